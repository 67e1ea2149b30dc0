# clusterdns as a container: the DNS server of the docker-compose lab (docker-compose.yml,
# docs/compose.md), or on its own:
#   docker build -t clusterdns .
#   docker run --rm -p 127.0.0.1:5353:53/udp -p 127.0.0.1:5353:53/tcp clusterdns
#   dig @127.0.0.1 -p 5353 +short kubernetes.default.svc.cluster.local
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Port 53 without root. `dns:` in compose takes a bare IP, so the server must listen on port 53
# inside the network. We give the interpreter the one capability it needs, in the image, so the
# image works wherever it runs: Docker on a bridge network (which also lowers
# net.ipv4.ip_unprivileged_port_start to 0 since 20.10), host networking, Podman, Kubernetes.
# setcap needs the real file, not the python3 -> python3.11 symlinks. A binary with file
# capabilities runs in secure-execution mode, where the loader does not trust its $ORIGIN rpath;
# libpython is found through ld.so.cache instead (the base image ran ldconfig for /usr/local/lib),
# and the bind check after USER below proves the whole thing at build time.
# Consequences: a container started with `cap_drop: [ALL]` must `cap_add: [NET_BIND_SERVICE]`
# (or the kernel refuses to exec python at all), and `no-new-privileges` drops the file
# capability (then only Docker's sysctl lets it bind port 53).
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends libcap2-bin; \
    setcap cap_net_bind_service=+ep "$(readlink -f /usr/local/bin/python3)"; \
    getcap "$(readlink -f /usr/local/bin/python3)"; \
    apt-get purge -y --auto-remove libcap2-bin; \
    rm -rf /var/lib/apt/lists/*

# The package and the example cluster,
# so that `docker run clusterdns` answers something. The compose lab mounts ./zones over it.
# gcc is here only while pip builds the batched-UDP extension (clusterdns/serve/_udpbatch.c); the
# import fails the build if it was not built, since the server would quietly run slower.
COPY pyproject.toml README.md /src/
COPY clusterdns/ /src/clusterdns/
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends gcc libc6-dev; \
    pip install /src; \
    python -c "import clusterdns.serve._udpbatch"; \
    apt-get purge -y --auto-remove gcc libc6-dev; \
    rm -rf /var/lib/apt/lists/* /src; \
    groupadd --system --gid 10053 clusterdns; \
    useradd --system --uid 10053 --gid clusterdns --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin clusterdns
COPY zones/ /zones/

USER 10053:10053
# Fail the build, not the first `docker compose up`, if the non-root user cannot bind port 53.
# The bind alone proves nothing under the legacy builder, whose RUN steps see
# ip_unprivileged_port_start=0 (BuildKit's do not), so the check also reads the capability
# itself: CAP_NET_BIND_SERVICE (bit 10) must be in the process's effective set.
RUN python -c "import socket; eff = int(next(l for l in open('/proc/self/status') if l.startswith('CapEff:')).split()[1], 16); \
assert eff >> 10 & 1, 'python lacks cap_net_bind_service: setcap did not take'; \
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('127.0.0.1', 53))"

EXPOSE 53/udp 53/tcp

# Healthy once the manifests are loaded: /ready (CoreDNS's ready plugin port, 8181) answers 200
# then, and 503 while draining; urlopen raises on anything but 2xx, so the exit code says it.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8181/ready', timeout=2)"]

ENTRYPOINT ["clusterdns", "serve"]
# --watch poll: inotify events do not cross a bind mount from Docker Desktop's VM (macOS,
# Windows), so the watcher polls the mounted directory once a second instead.
CMD ["--manifests", "/zones", "--listen", "0.0.0.0:53", "--watch", "poll", "--poll-interval", "1"]
