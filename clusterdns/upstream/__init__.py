"""Upstream: where names outside our zones go: single exchanges, the forwarder's policy and
health, resolv.conf, loop detection, and the cache of forwarded answers."""
