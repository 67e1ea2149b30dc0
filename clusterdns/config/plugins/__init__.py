"""The Corefile plugins clusterdns maps onto settings, one module per plugin family; HANDLERS
names the handler of each plugin, OPTIONS the options its `{ }` block takes, ACCEPTED those
taken without acting on them."""

from __future__ import annotations

from clusterdns.config.addresses import METRICS_PORT, READY_PORT
from clusterdns.config.plugins import answers, forward, kubernetes, server
from clusterdns.config.plugins.context import PluginHandler

# Plugins clusterdns accepts without acting on them: the warning printed at start-up (None: quietly).
ACCEPTED: dict[str, str | None] = {}


HANDLERS: dict[str, PluginHandler] = {
    "kubernetes": kubernetes.kubernetes,
    "forward": forward.forward,
    "cache": forward.cache,
    "health": server.health,
    "ready": server.endpoint("ready", f":{READY_PORT}"),
    "prometheus": server.endpoint("metrics", f"localhost:{METRICS_PORT}"),
    "log": server.log,
    "errors": server.errors,
    "reload": server.reload,
    "transfer": server.transfer,
    "bind": server.bind,
    "loop": server.loop,
    "loadbalance": answers.loadbalance,
    "rewrite": answers.rewrite,
    "hosts": answers.hosts,
    "k8s_external": answers.k8s_external,
}

# The options each plugin's `{ }` block takes: the tuples its handler checks against (docs/corefile.md's
# table lists the same, tests/config/test_corefile_doc.py holds them to it). Words on the plugin's own
# line (its arguments), hosts' inline entries and rewrite's rule words are not options.
OPTIONS: dict[str, tuple[str, ...]] = {
    "kubernetes": kubernetes.KUBERNETES_OPTIONS,
    "forward": forward.FORWARD_OPTIONS,
    "cache": forward.CACHE_OPTIONS,
    "health": server.HEALTH_OPTIONS,
    "ready": (),
    "prometheus": (),
    "log": (),
    "errors": server.ERRORS_OPTIONS,
    "reload": (),
    "transfer": server.TRANSFER_OPTIONS,
    "bind": (),
    "loop": (),
    "loadbalance": (),
    "rewrite": (),
    "hosts": answers.HOSTS_OPTIONS,
    "k8s_external": answers.K8S_EXTERNAL_OPTIONS,
}
