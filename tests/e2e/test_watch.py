"""Live reload (issue 3): every way the manifests directory changes, while a client queries.

Each test starts its own `clusterdns serve` on a fresh manifests directory whose Services
have fixed ClusterIPs, so every answer is known in advance. A background `Client` asks,
alternately over UDP and TCP, a set of questions for the whole test: a `stable` Service no
change touches (always its one answer), the SOA (whose serial must never go down), and the
names a change is about, whose answer must be exactly the before-state or the after-state
of the change in progress. A timeout, SERVFAIL/REFUSED/FORMERR, a third value, or a mix
(say, a headless Service answering some endpoints of the old set and some of the new, or an
SRV answer whose Additional section comes from the other version) is a failure. After a
change is seen, only the after-state is allowed. Each test ends with `client.finish()`:
zero failures and many queries.

Visibility is awaited with a generous deadline (a question every 50 ms for up to 10 s);
how fast changes appear is the benchmark's business, not this file's.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from clusterdns.manifests.watch import DEBOUNCE, WRITE_WAIT
from tests.helpers.manifests import service_yaml
from tests.helpers.process import QUIET_HTTP, Server, clusterdns_argv, udp_sockets, wait_until

ZONE = "default.svc.cluster.local"
DEADLINE = 10.0  # seconds to wait for a change to become visible
STEP = 0.05
PAUSE = 0.001  # between the client's queries: hundreds of TCP connections a second, not thousands
Question = tuple[str, str]  # (absolute name, type)
Answer = tuple[str, frozenset[str]]  # (rcode, every "owner TYPE rdata" of Answer and Additional)
NX: Answer = ("NXDOMAIN", frozenset())


def headless_yaml(name: str, ips: Iterable[str]) -> str:
    """A headless Service and its Endpoints in one file: the ready addresses are `ips`."""
    addresses = ", ".join(f"{{ip: {ip}}}" for ip in ips)
    return (
        "apiVersion: v1\n"
        "kind: Service\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        "spec:\n"
        "  clusterIP: None\n"
        "  ports: [{name: http, port: 80}]\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Endpoints\n"
        f"metadata: {{name: {name}, namespace: default}}\n"
        "subsets:\n"
        f"- addresses: [{addresses}]\n"
        "  ports: [{name: http, port: 80}]\n"
    )


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def atomic_write(path: Path, text: str, temp_name: str | None = None) -> None:
    """What vim (backupcopy=no), most editors and atomic-write libraries do: temp file, then rename."""
    temp = path.parent / (temp_name or f".{path.name}.swp")
    temp.write_text(text)
    os.replace(temp, path)


class AtomicWriter:
    """kubelet's ConfigMap/Secret volume writer (pkg/volume/util/atomic_writer.go), step by step.

    `<dir>/..<timestamp>/<key>` holds the files, `..data -> ..<timestamp>`, and each key is a
    user-visible symlink `<key> -> ..data/<key>`. An update writes a new timestamped
    directory, points `..data_tmp` at it, renames `..data_tmp` over `..data`, creates the
    symlinks of new keys, removes those of dropped keys, and deletes the old directory.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.version = 0
        self.keys: set[str] = set()

    def write(self, payload: dict[str, str]) -> None:
        self.version += 1
        old = os.readlink(self.root / "..data") if (self.root / "..data").is_symlink() else None
        ts_dir = f"..2024_01_01_00_00_{self.version:02d}.{1000 + self.version}"
        for key, text in payload.items():
            (self.root / ts_dir / key).parent.mkdir(parents=True, exist_ok=True)
            (self.root / ts_dir / key).write_text(text)
        os.symlink(ts_dir, self.root / "..data_tmp")
        os.replace(self.root / "..data_tmp", self.root / "..data")
        for key in payload:
            if not (self.root / key).is_symlink():
                os.symlink(f"..data/{key}", self.root / key)
        for key in self.keys - set(payload):
            os.unlink(self.root / key)
        if old is not None:
            shutil.rmtree(self.root / old)
        self.keys = set(payload)


def fqdn(name: str) -> str:
    return f"{name}.{ZONE}."


def answer_of(msg: dns.message.Message) -> Answer:
    rrs = set()
    for section in (msg.answer, msg.additional):
        for rrset in section:
            for rd in rrset:
                rrs.add(f"{rrset.name.to_text().lower()} {dns.rdatatype.to_text(rrset.rdtype)} {rd.to_text()}")
    return dns.rcode.to_text(msg.rcode()), frozenset(rrs)


def a_answer(name: str, *ips: str) -> Answer:
    """The A answer of `name`: NXDOMAIN when it has no address."""
    if not ips:
        return NX
    return "NOERROR", frozenset(f"{fqdn(name)} A {ip}" for ip in ips)


def srv_answer(name: str, port: int, ip: str) -> Answer:
    """`_http._tcp.<name>` SRV of a ClusterIP Service: the Service itself, its address in Additional."""
    return "NOERROR", frozenset({f"_http._tcp.{fqdn(name)} SRV 0 100 {port} {fqdn(name)}", f"{fqdn(name)} A {ip}"})


def headless_srv_answer(name: str, *ips: str) -> Answer:
    """`_http._tcp.<name>` SRV of a headless Service: one target per endpoint, addresses in Additional."""
    if not ips:
        return NX
    weight = 100 // len(ips)
    out = set()
    for ip in ips:
        target = f"{ip.replace('.', '-')}.{fqdn(name)}"
        out.add(f"_http._tcp.{fqdn(name)} SRV 0 {weight} 80 {target}")
        out.add(f"{target} A {ip}")
    return "NOERROR", frozenset(out)


def a_q(name: str) -> Question:
    return fqdn(name), "A"


def srv_q(name: str) -> Question:
    return f"_http._tcp.{fqdn(name)}", "SRV"


STABLE_IP = "10.96.0.10"
STABLE = {a_q("stable"): a_answer("stable", STABLE_IP), srv_q("stable"): srv_answer("stable", 80, STABLE_IP)}
X = ("10.244.0.1", "10.244.0.2")
Y = ("10.244.0.3", "10.244.0.4", "10.244.0.5")


def ask(server: Server, question: Question, tcp: bool = False) -> Answer:
    return answer_of(server.query(question[0], question[1], tcp=tcp, timeout=2))


def serial(server: Server) -> int:
    r = server.query("cluster.local", "SOA", timeout=2)
    assert r.rcode() == dns.rcode.NOERROR and r.answer
    return int(r.answer[0][0].serial)


def reloads(server: Server) -> int:
    return len(re.findall(r"^clusterdns: reloaded ", server.output, re.MULTILINE))


def wait_for_reload(server: Server, before: int) -> None:
    wait_until(lambda: reloads(server) > before, f"a reload after the {before} seen so far\n{server.output}")


class Client:
    """Asks every watched question in turn, alternating UDP and TCP, until stopped.

    An answer is checked against what was allowed when the question was sent and when its
    reply arrived (the union: a change may land while a question is in flight). The SOA
    serial is also asked each round and must never decrease.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.allowed: dict[Question, frozenset[Answer]] = {}
        self.queries = 0
        self.by_proto = {"udp": 0, "tcp": 0}
        self.failures: list[str] = []
        self.last_serial = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dns-client", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def allow(self, question: Question, *answers: Answer) -> None:
        with self.lock:
            self.allowed[question] = frozenset(answers)

    def _allowed(self, question: Question) -> frozenset[Answer]:
        with self.lock:
            return self.allowed.get(question, frozenset())

    def _fail(self, text: str) -> None:
        with self.lock:
            self.failures.append(text)

    def _run(self) -> None:
        rounds = 0
        while not self.stopping.is_set():
            rounds += 1
            with self.lock:
                questions = list(self.allowed)
            for i, question in enumerate(questions + [("cluster.local.", "SOA")]):
                proto = "tcp" if (rounds + i) % 2 else "udp"  # each question alternates between rounds
                try:
                    self._ask(question, proto)
                except (dns.exception.DNSException, OSError) as e:
                    self._fail(f"{proto} {question}: {type(e).__name__}: {e}")
                except Exception as e:  # noqa: BLE001 - a thread must not raise (filterwarnings=error)
                    self._fail(f"{proto} {question}: unexpected {type(e).__name__}: {e}")
                finally:
                    with self.lock:
                        self.queries += 1
                        self.by_proto[proto] += 1
                self.stopping.wait(PAUSE)

    def _ask(self, question: Question, proto: str) -> None:
        before = self._allowed(question)
        msg = self.server.query(question[0], question[1], tcp=proto == "tcp", timeout=2)
        if question[1] == "SOA":
            self._check_serial(proto, msg)
            return
        got = answer_of(msg)
        allowed = before | self._allowed(question)
        if got not in allowed:
            self._fail(f"{proto} {question}: got {sorted(got[1])} {got[0]}, allowed {[(r, sorted(a)) for r, a in allowed]}")

    def _check_serial(self, proto: str, msg: dns.message.Message) -> None:
        if msg.rcode() != dns.rcode.NOERROR or not msg.answer:
            self._fail(f"{proto} SOA: {dns.rcode.to_text(msg.rcode())} {msg.answer}")
            return
        if msg.answer[0].rdtype != dns.rdatatype.SOA:
            self._fail(f"{proto} SOA: {msg.answer}")
            return
        value = int(msg.answer[0][0].serial)
        if value < self.last_serial:
            self._fail(f"{proto} SOA serial went down: {self.last_serial} -> {value}")
        self.last_serial = max(self.last_serial, value)

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(10)

    def finish(self, more: int = 30) -> None:
        """Let the final state be asked `more` more times (and at least 100 in all), stop,
        and check the whole run."""
        with self.lock:
            target = max(self.queries + more, 100)
        wait_until(lambda: self.queries >= target or not self.thread.is_alive(), "client progress")
        self.stop()
        assert not self.thread.is_alive()
        assert not self.failures, f"{len(self.failures)} failed or wrong answers of {self.queries}:\n" + "\n".join(self.failures[:20])
        assert self.queries > 50 and min(self.by_proto.values()) > 25, f"the client made only {self.by_proto} queries"

    # -- changes -----------------------------------------------------------------

    def expect(self, states: dict[Question, Answer]) -> None:
        """These answers hold now (checked at once), and must keep holding."""
        for question, state in states.items():
            got = ask(self.server, question)
            assert got == state, f"{question}: {got}, expected {state}"
            self.allow(question, state)

    def change(self, action: Callable[[], None], transitions: dict[Question, tuple[Answer, Answer]], deadline: float = DEADLINE) -> None:
        """Allow before-or-after, act, wait until every question answers its after-state
        (every answer seen meanwhile must be one of the two), then allow only the after-state."""
        for question, (before, after) in transitions.items():
            self.allow(question, before, after)
        action()
        pending = dict(transitions)
        tcp = False

        def done() -> bool:
            nonlocal tcp
            for question, (before, after) in list(pending.items()):
                tcp = not tcp
                got = ask(self.server, question, tcp=tcp)
                assert got in (before, after), f"{question}: {got} is neither before {before} nor after {after}"
                if got == after:
                    del pending[question]
            return not pending

        wait_until(done, f"change visible: {pending}\n{self.server.output}", deadline)
        for question, (_, after) in transitions.items():
            self.allow(question, after)


@pytest.fixture
def live(serve, tmp_path: Path) -> Iterator[Callable[..., tuple[Server, Client, Path]]]:
    """live(files, *flags) -> (server, client, manifests dir): `stable.yaml` plus `files`,
    served, with a client already asking the stable Service and the SOA."""
    clients: list[Client] = []

    def start(files: dict[str, str] | None = None, *flags: str, configmap: AtomicWriter | None = None) -> tuple[Server, Client, Path]:
        root = tmp_path / "manifests"
        payload = {"stable.yaml": service_yaml("stable", STABLE_IP), **(files or {})}
        if configmap is not None:
            assert configmap.root == root
            root.mkdir()
            configmap.write(payload)
        else:
            for rel, text in payload.items():
                write(root / rel, text)
        server = serve(root, *flags)
        client = Client(server)
        clients.append(client)
        client.expect(STABLE)
        client.start()
        return server, client, root

    yield start
    for client in clients:
        client.stop()


def test_create_file(live) -> None:
    server, client, root = live()
    client.expect({a_q("web"): NX, srv_q("web"): NX})
    s0 = serial(server)
    client.change(
        lambda: write(root / "web.yaml", service_yaml("web", "10.96.0.20")),
        {a_q("web"): (NX, a_answer("web", "10.96.0.20")), srv_q("web"): (NX, srv_answer("web", 80, "10.96.0.20"))},
    )
    assert serial(server) > s0
    client.finish()


def test_modify_in_place_is_atomic(live) -> None:
    """A headless Service's endpoints go from X to Y: every answer is all of X or all of Y."""
    server, client, root = live({"hl.yaml": headless_yaml("hl", X)})
    client.expect({a_q("hl"): a_answer("hl", *X), srv_q("hl"): headless_srv_answer("hl", *X)})
    inode = (root / "hl.yaml").stat().st_ino
    s0 = serial(server)
    for old, new in ((X, Y), (Y, X), (X, Y)):
        client.change(
            lambda new=new: (root / "hl.yaml").write_text(headless_yaml("hl", new)),  # type: ignore[misc]
            {
                a_q("hl"): (a_answer("hl", *old), a_answer("hl", *new)),
                srv_q("hl"): (headless_srv_answer("hl", *old), headless_srv_answer("hl", *new)),
                a_q("10-244-0-1.hl"): (a_answer("10-244-0-1.hl", "10.244.0.1") if "10.244.0.1" in old else NX,
                                       a_answer("10-244-0-1.hl", "10.244.0.1") if "10.244.0.1" in new else NX),
            },
        )
        s1 = serial(server)
        assert s1 > s0
        s0 = s1
    assert (root / "hl.yaml").stat().st_ino == inode, "the file was rewritten in place"
    client.finish()


def test_delete_file(live) -> None:
    server, client, root = live({"web.yaml": service_yaml("web", "10.96.0.20")})
    client.expect({a_q("web"): a_answer("web", "10.96.0.20"), srv_q("web"): srv_answer("web", 80, "10.96.0.20")})
    s0 = serial(server)
    client.change(
        lambda: (root / "web.yaml").unlink(),
        {a_q("web"): (a_answer("web", "10.96.0.20"), NX), srv_q("web"): (srv_answer("web", 80, "10.96.0.20"), NX)},
    )
    assert serial(server) > s0
    client.finish()


@pytest.mark.parametrize("target", ["renamed.yaml", "sub/web.yml", "web.json"])
def test_rename_within_directory(live, target: str) -> None:
    """Renamed to another manifest name: never a moment without the Service, serial unchanged.
    Renamed to a name that is not a manifest: gone; renamed back: served again."""
    text = service_yaml("web", "10.96.0.20")
    if target.endswith(".json"):
        text = '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},\n' \
               ' "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}\n'
    server, client, root = live({"web.yaml": text, "sub/other.yaml": service_yaml("other", "10.96.0.21")})
    up = a_answer("web", "10.96.0.20")
    client.expect({a_q("web"): up, a_q("other"): a_answer("other", "10.96.0.21")})
    s0, n = serial(server), reloads(server)
    os.rename(root / "web.yaml", root / target)
    wait_for_reload(server, n)
    assert re.search(r"reloaded .*: 1 added, 0 modified, 1 removed", server.output), server.output
    assert ask(server, a_q("web")) == up
    assert serial(server) == s0, "a rename alters no record"
    client.change(lambda: os.rename(root / target, root / "web.disabled"), {a_q("web"): (up, NX)})
    client.change(lambda: os.rename(root / "web.disabled", root / target), {a_q("web"): (NX, up)})
    client.finish()


@pytest.mark.parametrize("what", ["file", "directory"])
def test_move_in_and_out(live, tmp_path: Path, what: str) -> None:
    """os.rename from a directory outside the tree (same file system) into it, and back out."""
    server, client, root = live()
    outside = tmp_path / "outside"
    up = a_answer("web", "10.96.0.20")
    if what == "file":
        write(outside / "web.yaml", service_yaml("web", "10.96.0.20"))
        src, dst = outside / "web.yaml", root / "web.yaml"
    else:
        write(outside / "apps" / "nested" / "web.yaml", service_yaml("web", "10.96.0.20"))
        src, dst = outside / "apps", root / "apps"
    client.expect({a_q("web"): NX})
    s0 = serial(server)
    client.change(lambda: os.rename(src, dst), {a_q("web"): (NX, up), srv_q("web"): (NX, srv_answer("web", 80, "10.96.0.20"))})
    s1 = serial(server)
    assert s1 > s0
    client.change(lambda: os.rename(dst, src), {a_q("web"): (up, NX), srv_q("web"): (srv_answer("web", 80, "10.96.0.20"), NX)})
    assert serial(server) > s1
    assert src.exists() and not dst.exists()
    client.finish()


@pytest.mark.parametrize("temp_name", [".hl.yaml.swp", "hl.yaml.tmp", "hl.yaml~", ".hl.yaml.tmp.yaml"])
def test_atomic_save(live, temp_name: str) -> None:
    """Write a temp file next to the target, then rename it over the target (new inode)."""
    server, client, root = live({"hl.yaml": headless_yaml("hl", X)})
    client.expect({a_q("hl"): a_answer("hl", *X), srv_q("hl"): headless_srv_answer("hl", *X)})
    inode = (root / "hl.yaml").stat().st_ino
    s0 = serial(server)
    n = reloads(server)
    client.change(
        lambda: atomic_write(root / "hl.yaml", headless_yaml("hl", Y), temp_name),
        {a_q("hl"): (a_answer("hl", *X), a_answer("hl", *Y)), srv_q("hl"): (headless_srv_answer("hl", *X), headless_srv_answer("hl", *Y))},
    )
    assert (root / "hl.yaml").stat().st_ino != inode
    assert not (root / temp_name).exists()
    assert serial(server) > s0
    client.finish()
    # README: an editor's save through a temp file and a rename is one change, not two.
    time.sleep(0.3)
    lines = re.findall(r"^clusterdns: reloaded .*$", server.output, re.MULTILINE)[n:]
    assert len(lines) == 1 and "0 added, 1 modified, 0 removed" in lines[0], lines


def test_subdirectory_added_and_removed(live) -> None:
    server, client, root = live()
    up_a, up_b = a_answer("web", "10.96.0.20"), a_answer("api", "10.96.0.22")
    client.expect({a_q("web"): NX, a_q("api"): NX})

    def add() -> None:
        (root / "team" / "deep" / "er").mkdir(parents=True)
        (root / "team" / "web.yaml").write_text(service_yaml("web", "10.96.0.20"))
        (root / "team" / "deep" / "er" / "api.yaml").write_text(service_yaml("api", "10.96.0.22"))

    s0 = serial(server)
    client.change(add, {a_q("web"): (NX, up_a), a_q("api"): (NX, up_b)})
    assert serial(server) > s0
    client.change(lambda: shutil.rmtree(root / "team"), {a_q("web"): (up_a, NX), a_q("api"): (up_b, NX)})
    client.finish()


def test_burst_of_files_is_one_reload(live) -> None:
    """50 files written at once (a git checkout): a handful of reloads, not 50; all 50 served."""
    server, client, root = live()
    ips = {f"s{i:02d}": f"10.96.1.{i + 1}" for i in range(50)}
    client.expect({a_q("s00"): NX, a_q("s49"): NX})
    n = reloads(server)
    spent: list[float] = []  # how long each burst took to write

    def timed(burst: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            started = time.monotonic()
            burst()
            spent.append(time.monotonic() - started)
        return run

    def allowed() -> int:
        # A handful, plus one for each debounce window the burst itself took to write
        # (a stalled writer on a busy machine spreads it over more than one).
        return 5 + int(spent[-1] / DEBOUNCE)

    def checkout() -> None:
        for name, ip in ips.items():
            write(root / "apps" / f"{name}.yaml", service_yaml(name, ip))

    client.change(timed(checkout), {a_q("s00"): (NX, a_answer("s00", ips["s00"])), a_q("s49"): (NX, a_answer("s49", ips["s49"]))})
    for name, ip in ips.items():
        assert ask(server, a_q(name)) == a_answer(name, ip)
    time.sleep(0.6)  # a late event would make one more reload: count it too
    added = reloads(server) - n
    assert 1 <= added <= allowed(), f"{added} reloads for one burst of 50 files\n{server.output}"

    n = reloads(server)
    client.change(
        timed(lambda: [p.unlink() for p in sorted((root / "apps").iterdir())]),
        {a_q("s00"): (a_answer("s00", ips["s00"]), NX), a_q("s49"): (a_answer("s49", ips["s49"]), NX)},
    )
    for name in ips:
        assert ask(server, a_q(name)) == NX
    time.sleep(0.6)
    removed = reloads(server) - n
    assert 1 <= removed <= allowed(), f"{removed} reloads for deleting 50 files\n{server.output}"
    client.finish()


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_symlinked_file(live, tmp_path: Path, mode: str) -> None:
    """`link.yaml -> ../elsewhere/svc.yaml`: served; a change of the target's content, and a
    change of the link itself, are both seen."""
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "svc.yaml", service_yaml("linked", "10.96.0.30"))
    write(elsewhere / "other.yaml", service_yaml("linked", "10.96.0.32"))
    flags = ("--watch", "poll", "--poll-interval", "0.2") if mode == "poll" else ()
    server, client, root = live({}, *flags)
    v0, v1, v2 = (a_answer("linked", ip) for ip in ("10.96.0.30", "10.96.0.31", "10.96.0.32"))
    client.expect({a_q("linked"): NX})
    client.change(lambda: os.symlink("../elsewhere/svc.yaml", root / "link.yaml"), {a_q("linked"): (NX, v0)})

    # The target's content changes, in place (the link and its directory are untouched).
    client.change(lambda: (elsewhere / "svc.yaml").write_text(service_yaml("linked", "10.96.0.31")), {a_q("linked"): (v0, v1)})

    # The link is repointed (atomically, as `ln -sfn` via a temp link would).
    def relink() -> None:
        os.symlink("../elsewhere/other.yaml", root / ".link.tmp")
        os.replace(root / ".link.tmp", root / "link.yaml")

    client.change(relink, {a_q("linked"): (v1, v2)})
    client.change(lambda: (root / "link.yaml").unlink(), {a_q("linked"): (v2, NX)})
    assert (elsewhere / "other.yaml").exists()
    client.finish()


@pytest.mark.parametrize("mode", ["auto", "poll"])
def test_configmap_volume_swap(live, tmp_path: Path, mode: str) -> None:
    """The manifests directory is a ConfigMap volume: kubelet swaps `..data` to a new
    timestamped directory; keys appear and disappear as top-level symlinks."""
    writer = AtomicWriter(tmp_path / "manifests")
    flags = ("--watch", "poll", "--poll-interval", "0.2") if mode == "poll" else ()
    server, client, root = live({"hl.yaml": headless_yaml("hl", X)}, *flags, configmap=writer)
    assert os.readlink(root / "..data") == "..2024_01_01_00_00_01.1001"
    assert os.readlink(root / "hl.yaml") == "..data/hl.yaml"
    stable_yaml = service_yaml("stable", STABLE_IP)
    extra = a_answer("extra", "10.96.0.40")
    client.expect({a_q("hl"): a_answer("hl", *X), srv_q("hl"): headless_srv_answer("hl", *X), a_q("extra"): NX})
    s0 = serial(server)

    client.change(
        lambda: writer.write({"stable.yaml": stable_yaml, "hl.yaml": headless_yaml("hl", Y), "extra.yaml": service_yaml("extra", "10.96.0.40")}),
        {
            a_q("hl"): (a_answer("hl", *X), a_answer("hl", *Y)),
            srv_q("hl"): (headless_srv_answer("hl", *X), headless_srv_answer("hl", *Y)),
            a_q("extra"): (NX, extra),
        },
    )
    assert not (root / "..2024_01_01_00_00_01.1001").exists()
    s1 = serial(server)
    assert s1 > s0

    client.change(
        lambda: writer.write({"stable.yaml": stable_yaml, "hl.yaml": headless_yaml("hl", X)}),
        {
            a_q("hl"): (a_answer("hl", *Y), a_answer("hl", *X)),
            srv_q("hl"): (headless_srv_answer("hl", *Y), headless_srv_answer("hl", *X)),
            a_q("extra"): (extra, NX),
        },
    )
    assert not (root / "extra.yaml").exists() and os.readlink(root / "..data") == "..2024_01_01_00_00_03.1003"
    assert serial(server) > s1
    assert "error" not in server.output, server.output
    client.finish()


BROKEN_YAML = (
    "apiVersion: v1\n"
    "kind: Service\n"
    "metadata:\n"
    "  name: web\n"
    "  namespace: default\n"
    "spec:\n"
    "  clusterIP: 10.96.0.29\n"
    "  ports: [{name: http, port: 80}\n"  # line 8: the flow sequence is never closed
)
# The reload line is logged after the file's problems: waiting for it waits for them all.
BROKEN_RELOAD = r"reloaded .*: 0 added, 1 modified, 0 removed, 1 broken \(serving their last good version\)"


def test_broken_file_keeps_last_good_until_repaired(live) -> None:
    server, client, root = live({"web.yaml": service_yaml("web", "10.96.0.20"), "other.yaml": service_yaml("other", "10.96.0.21")})
    good = a_answer("web", "10.96.0.20")
    client.expect({a_q("web"): good, srv_q("web"): srv_answer("web", 80, "10.96.0.20"), a_q("other"): a_answer("other", "10.96.0.21")})
    s0 = serial(server)

    (root / "web.yaml").write_text(BROKEN_YAML)
    assert server.wait_for_output(BROKEN_RELOAD), server.output
    assert re.search(r"error: web\.yaml:\d+ \(document 0\): invalid YAML", server.output), server.output
    line = int(re.search(r"error: web\.yaml:(\d+) ", server.output).group(1))  # type: ignore[union-attr]
    assert line == 8, f"the error names line {line}, the unclosed sequence is on line 8\n{server.output}"
    assert re.search(r"web\.yaml.*serving the last good version", server.output), server.output
    assert ask(server, a_q("web")) == good, "a broken file keeps serving its last good objects"
    assert serial(server) == s0, "nothing served changed"

    # The rest of the directory keeps reloading while web.yaml is broken.
    client.change(lambda: (root / "other.yaml").write_text(service_yaml("other", "10.96.0.23")),
                  {a_q("other"): (a_answer("other", "10.96.0.21"), a_answer("other", "10.96.0.23"))})
    assert ask(server, a_q("web")) == good

    # A forced full re-read does not lose the last good version either.
    n = reloads(server)
    os.kill(server.proc.pid, signal.SIGHUP)
    wait_for_reload(server, n)
    assert ask(server, a_q("web")) == good

    s1 = serial(server)
    client.change(lambda: (root / "web.yaml").write_text(service_yaml("web", "10.96.0.24")),
                  {a_q("web"): (good, a_answer("web", "10.96.0.24")),
                   srv_q("web"): (srv_answer("web", 80, "10.96.0.20"), srv_answer("web", 80, "10.96.0.24"))})
    s2 = serial(server)
    assert s2 > s1
    # The new answers are served before their reload is logged: wait for that line.
    line = rf"(?m)^clusterdns: reloaded .*serial {s2}\b.*$"
    assert server.wait_for_output(line), server.output
    last = re.findall(line, server.output)[-1]
    assert not re.search(r", \d+ broken |; \d+ errors;", last), f"the repaired reload reports no errors\n{server.output}"
    client.finish()


def test_invalid_object_keeps_last_good_and_names_the_field(live) -> None:
    server, client, root = live({"web.yaml": service_yaml("web", "10.96.0.20")})
    client.expect({a_q("web"): a_answer("web", "10.96.0.20"), srv_q("web"): srv_answer("web", 80, "10.96.0.20")})
    s0 = serial(server)
    (root / "web.yaml").write_text(service_yaml("web", "10.96.0.20", port="eighty"))
    assert server.wait_for_output(BROKEN_RELOAD), server.output
    assert re.search(r"error: web\.yaml:1 \(document 0\): Service .*web.*: field spec\.ports\[0\]\.port: ", server.output), server.output
    assert ask(server, srv_q("web")) == srv_answer("web", 80, "10.96.0.20"), "the last good port is still served"
    assert serial(server) == s0
    client.change(lambda: (root / "web.yaml").write_text(service_yaml("web", "10.96.0.20", port=8080)),
                  {srv_q("web"): (srv_answer("web", 80, "10.96.0.20"), srv_answer("web", 8080, "10.96.0.20"))})
    assert serial(server) > s0
    client.finish()


@pytest.mark.parametrize("breakage", ["yaml", "object"])
def test_deleting_a_broken_file_removes_its_last_good_objects(live, breakage: str) -> None:
    server, client, root = live({"web.yaml": service_yaml("web", "10.96.0.20")})
    good = a_answer("web", "10.96.0.20")
    client.expect({a_q("web"): good})
    broken = BROKEN_YAML if breakage == "yaml" else service_yaml("web", "10.96.0.20", port="eighty")
    (root / "web.yaml").write_text(broken)
    assert server.wait_for_output(BROKEN_RELOAD), server.output
    assert re.search(r"error: web\.yaml:\d+ ", server.output), server.output
    assert ask(server, a_q("web")) == good
    s0 = serial(server)
    client.change(lambda: (root / "web.yaml").unlink(), {a_q("web"): (good, NX)})
    assert serial(server) > s0
    client.finish()


def test_serial_changes_only_when_answers_change(live) -> None:
    path_text = service_yaml("web", "10.96.0.20")
    server, client, root = live({"web.yaml": path_text})
    path = root / "web.yaml"
    client.expect({a_q("web"): a_answer("web", "10.96.0.20")})
    s0 = serial(server)

    def unchanged(action: Callable[[], None], what: str) -> None:
        n = reloads(server)
        action()
        wait_for_reload(server, n)  # the file was re-read...
        assert serial(server) == s0, f"{what}: the serial moved though no answer did\n{server.output}"

    unchanged(lambda: os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9)), "touch")
    unchanged(lambda: path.write_bytes(path.read_bytes()), "same bytes rewritten")
    unchanged(lambda: path.write_text("# a comment, nothing else\n" + path_text), "comment added")
    unchanged(lambda: atomic_write(path, "# reformatted\n" + path_text.replace("  - name: http\n    port: 80\n", "  - {port: 80, name: http}\n")), "reformatted")

    n = reloads(server)
    os.kill(server.proc.pid, signal.SIGHUP)  # a forced full re-read changes nothing either
    wait_for_reload(server, n)
    assert serial(server) == s0

    client.change(lambda: path.write_text(path_text.replace("10.96.0.20", "10.96.0.21")),
                  {a_q("web"): (a_answer("web", "10.96.0.20"), a_answer("web", "10.96.0.21"))})
    s1 = serial(server)
    assert s1 > s0
    client.change(lambda: path.write_text(path_text),
                  {a_q("web"): (a_answer("web", "10.96.0.21"), a_answer("web", "10.96.0.20"))})
    assert serial(server) > s1, "changing back is a change too"
    client.finish()


def test_watch_poll(live) -> None:
    server, client, root = live({}, "--watch", "poll", "--poll-interval", "0.2")
    assert server.wait_for_output(r"watching .* \(polling\)"), server.output  # printed after "serving DNS on"
    up, up2 = a_answer("web", "10.96.0.20"), a_answer("web", "10.96.0.21")
    client.expect({a_q("web"): NX})
    client.change(lambda: write(root / "web.yaml", service_yaml("web", "10.96.0.20")), {a_q("web"): (NX, up)})
    client.change(lambda: atomic_write(root / "web.yaml", service_yaml("web", "10.96.0.21")), {a_q("web"): (up, up2)})
    client.change(lambda: (root / "web.yaml").unlink(), {a_q("web"): (up2, NX)})
    client.finish()


def test_watch_off_then_sighup(live) -> None:
    server, client, root = live({}, "--watch", "off")
    assert server.wait_for_output("no upstream|forwarding other names"), server.output  # "watching" would come next
    assert "watching" not in server.output
    client.expect({a_q("web"): NX})
    write(root / "web.yaml", service_yaml("web", "10.96.0.20"))
    end = time.monotonic() + 2
    while time.monotonic() < end:  # the client, too, allows nothing but NXDOMAIN meanwhile
        assert ask(server, a_q("web")) == NX, "--watch off: a change is not picked up"
        time.sleep(STEP)
    up = a_answer("web", "10.96.0.20")
    s0 = serial(server)
    client.change(lambda: os.kill(server.proc.pid, signal.SIGHUP), {a_q("web"): (NX, up)})
    assert serial(server) > s0
    (root / "web.yaml").unlink()
    time.sleep(1)
    assert ask(server, a_q("web")) == up
    client.change(lambda: os.kill(server.proc.pid, signal.SIGHUP), {a_q("web"): (up, NX)})
    client.finish()


def test_a_file_is_read_once_its_writer_closes_it(live) -> None:
    """A manifest streamed into place (`kubectl get -o yaml > file`, an editor saving in
    place) is read when its writer closes it, not half-written: both Services at once."""
    server, client, root = live()
    web, api = a_answer("web", "10.96.0.20"), a_answer("api", "10.96.0.21")
    client.expect({a_q("web"): NX, a_q("api"): NX})

    def stream() -> None:
        with (root / "both.yaml").open("w") as f:
            f.write(service_yaml("web", "10.96.0.20") + "---\n")  # a whole first document
            f.flush()
            time.sleep(0.5)  # ten debounce periods, the file open and half-written
            assert ask(server, a_q("web")) == NX, f"read while its writer had it open\n{server.output}"
            f.write(service_yaml("api", "10.96.0.21"))

    client.change(stream, {a_q("web"): (NX, web), a_q("api"): (NX, api)})
    client.finish()


def test_a_writer_that_keeps_the_file_open_holds_the_reload_back_for_a_while_only(live) -> None:
    server, client, root = live()
    web = a_answer("web", "10.96.0.20")
    client.expect({a_q("web"): NX})
    client.allow(a_q("web"), NX, web)
    with (root / "web.yaml").open("w") as f:
        f.write(service_yaml("web", "10.96.0.20"))
        f.flush()
        started = time.monotonic()
        wait_until(lambda: ask(server, a_q("web")) == web, f"served though still open\n{server.output}")
        assert time.monotonic() - started >= WRITE_WAIT - 0.2, "held back while open"
    client.allow(a_q("web"), web)
    client.finish()


def test_same_size_edit_keeping_the_mtime_is_seen(live) -> None:
    """Two edits within one mtime tick (1-2 s on some file systems): ctime still moves."""
    server, client, root = live({"web.yaml": service_yaml("web", "10.96.0.20")})
    up, up2 = a_answer("web", "10.96.0.20"), a_answer("web", "10.96.0.21")
    client.expect({a_q("web"): up})
    path = root / "web.yaml"
    old = path.stat()

    def edit() -> None:
        path.write_text(service_yaml("web", "10.96.0.21"))  # same size
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))

    client.change(edit, {a_q("web"): (up, up2)})
    client.finish()


def test_replaced_root_directory_is_watched_again(serve, tmp_path: Path) -> None:
    """`--manifests current` where `current -> v1` is swapped to v2 (git-sync's link swap)."""
    for version, ip in (("v1", "10.96.0.20"), ("v2", "10.96.0.21")):
        write(tmp_path / version / "web.yaml", service_yaml("web", ip))
    (tmp_path / "current").symlink_to("v1")
    server = serve(tmp_path / "current")
    assert ask(server, a_q("web")) == a_answer("web", "10.96.0.20")
    (tmp_path / "current.tmp").symlink_to("v2")
    os.replace(tmp_path / "current.tmp", tmp_path / "current")
    wait_until(lambda: ask(server, a_q("web")) == a_answer("web", "10.96.0.21"), "the swapped root is served")
    write(tmp_path / "v2" / "web.yaml", service_yaml("web", "10.96.0.22"))  # an edit inside the new root
    wait_until(lambda: ask(server, a_q("web")) == a_answer("web", "10.96.0.22"), "edits in the new root are seen")


def test_sighup_during_start_up_is_held_not_fatal(tmp_path: Path) -> None:
    """A SIGHUP while the server is still loading (and so forwarded to a worker that is
    still starting) waits until the server handles it: no process dies of it, and the
    re-read it asks for happens in every process."""
    write(tmp_path / "web.yaml", service_yaml("web", "10.96.0.20"))
    argv = clusterdns_argv("serve", "--manifests", str(tmp_path), "--listen", "127.0.0.1:0", "--upstream", "none",
                           "--watch", "off", "--workers", "2")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **QUIET_HTTP}, start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # "loaded" is logged before the server serves, or handles SIGHUP
            lines.append(line)
            if " loaded " in line:
                break
        write(tmp_path / "web.yaml", service_yaml("web", "10.96.0.21"))
        os.kill(proc.pid, signal.SIGHUP)
        port = 0
        for line in proc.stdout:
            lines.append(line)
            if m := re.search(r"serving DNS on 127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
                break
        assert port and proc.poll() is None, "".join(lines)
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        [worker] = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        wait_until(lambda: udp_sockets(port) == 2, "the worker serves")
        new = a_answer("web", "10.96.0.21")

        def everyone_reloaded() -> bool:
            return all(answer_of(dns.query.udp(dns.message.make_query(f"web.{ZONE}", "A"), "127.0.0.1", port=port, timeout=2)) == new
                       for _ in range(40))

        wait_until(everyone_reloaded, "both processes re-read the manifests\n" + "".join(lines))
        assert proc.poll() is None and Path(f"/proc/{worker}").exists(), "".join(lines)
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]  # (the reader, if started, is at its end)


def test_sighup_reaches_every_worker(serve, tmp_path: Path) -> None:
    write(tmp_path / "web.yaml", service_yaml("web", "10.96.0.20"))
    server = serve(tmp_path, "--workers", "2", "--watch", "off")
    assert server.wait_for_output("2 worker processes share each port")
    [worker] = server.workers()

    def catches_sighup() -> bool:  # SigCgt is a hex mask; SIGHUP (1) is bit 0
        status = Path(f"/proc/{worker}/status").read_text()
        return int(re.search(r"^SigCgt:\s+([0-9a-f]+)", status, re.M).group(1), 16) & 1 == 1  # type: ignore[union-attr]

    wait_until(lambda: udp_sockets(server.port) == 2 and catches_sighup(), "the worker serves and handles SIGHUP")
    write(tmp_path / "web.yaml", service_yaml("web", "10.96.0.21"))
    os.kill(server.proc.pid, signal.SIGHUP)
    new = a_answer("web", "10.96.0.21")
    wait_until(lambda: all(ask(server, a_q("web"), tcp=i % 2 == 1) == new for i in range(40)), "every worker serves the change")
    assert server.workers() == [worker], "the worker reloaded, it did not die of the signal"
    serials = {serial(server) for _ in range(30)}
    assert len(serials) == 1, f"workers agree on the serial: {serials}"


def test_readme_states_the_debounce_and_write_wait_the_watcher_uses() -> None:
    from tests.helpers.process import ROOT

    readme = (ROOT / "README.md").read_text()
    said = re.search(r"File events are collected until (\d+) ms pass with no new one", readme)
    assert said is not None, "the README's 'One reload per burst' sentence changed"
    assert int(said.group(1)) == round(DEBOUNCE * 1000)
    said = re.search(r"waits for its\s+writer to close it .*?for up to (\d+) s", readme, re.S)
    assert said is not None, "the README's sentence on files still open for writing changed"
    assert int(said.group(1)) == WRITE_WAIT
