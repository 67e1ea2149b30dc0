"""manifests/_yamlstream.c: a stream's documents built in C are the ones the Python reading builds,
and whatever the C reader does not build plainly it leaves to Python (False), never differs."""

from __future__ import annotations

import datetime
import math
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterdns.config.settings import Config
from clusterdns.manifests import yaml_fast
from clusterdns.manifests.documents import split_documents
from clusterdns.objects.store import ManifestStore
from tests.manifests.test_documents import SERVICE, TRICKY_YAML

built = pytest.mark.skipif(yaml_fast._yamlstream is None, reason="built without libyaml's headers")


def test_the_c_reader_is_built_where_libyaml_headers_are() -> None:
    """`make` installs libyaml-dev where apt-get can: then the suite runs the C reader."""
    if Path("/usr/include/yaml.h").exists():
        assert yaml_fast._yamlstream is not None


def in_python(text: str) -> list | None:
    """load_stream with the C reader turned off: what every stream got before it."""
    saved, yaml_fast._yamlstream = yaml_fast._yamlstream, None
    try:
        return yaml_fast.load_stream(text, split_documents(text))
    finally:
        yaml_fast._yamlstream = saved


def same(a: object, b: object) -> bool:
    """Equal, with the types of scalars (1 is not True) and NaN equal to itself."""
    return repr(a) == repr(b)


def agrees(text: str) -> bool | None:
    """bench/fuzz_yaml.py's verdict on `text`: True when the C reader built it (documents, not
    None) as Python does; False when it left it to Python, or both readings raise the same;
    None when they differ in any way."""
    chunks = split_documents(text)
    try:
        expected = in_python(text)
    except Exception as e:  # noqa: BLE001 - the Python reading's own error (a lone surrogate)
        try:
            yaml_fast.load_stream(text, chunks)
        except type(e):
            return False
        return None
    directive = text.startswith("%") or "\n%" in text
    try:
        got = False if directive else yaml_fast._c_stream(text, chunks)
        read = yaml_fast.load_stream(text, chunks)
    except Exception:  # noqa: BLE001 - the C reader raised where Python did not
        return None
    if not same(read, expected) or (got is not False and not same(got, expected)):
        return None
    return isinstance(got, list)


FAILURES = Path(__file__).resolve().parent.parent / "fuzz_corpus" / "yaml"  # texts that once differed


@built
@pytest.mark.parametrize("path", sorted(FAILURES.glob("*.yaml")), ids=lambda p: p.name)
def test_texts_that_once_differed_read_the_same(path: Path) -> None:
    """bench/fuzz_yaml.py saves what differs here; a review found the first (a leading BOM)."""
    assert agrees(path.read_bytes().decode("utf-8", "surrogatepass")) is not None


# What PyYAML's constructors raised ValueError on (found in review: `clusterdns check` ended in a
# traceback, and the server kept its previous data for every file): the text it is written
# as, as go-yaml, Kubernetes' YAML reader, resolves it. A date that exists stays a date.
IMPOSSIBLE = ("d: 2024-02-30\nt: 2024-13-01T00:00:00Z\nn: " + "1" * 4301 + "\nm: -" + "2" * 4400 + "\nok: 2024-02-29\n"
              "h: 0x" + "f" * 3600 + "\ns: " + "59:" * 2500 + "1\nbig: 0x" + "f" * 16 + "\n")  # hex and base 60: no digit limit in int()

# Plain data, which the C reader builds itself (not False): YAML 1.1 scalars resolved as
# PyYAML resolves them, quoted and block scalars as strings, repeated keys (the last wins).
PLAIN = [
    "a: 1\nb: yes\nc: 'yes'\nd: 0o17\ne: 017\nf: 0x1F\ng: 1_000\nh: 1:30\ni: 1.5e3\nj: .inf\nk: ~\nl: null\nm: True\nn: NO\n",
    "t: 2001-12-14t21:59:43.10-05:00\nd: 2002-12-14\ni: 0b1010\nz: 0\no: 08\nn: -.NaN\np: +12\nq: -0\nr: 1.\ns: on\nu: Off\n",
    "ports:\n- {name: http, port: 80, targetPort: 8080}\n- name: dns\n  port: 53\n  protocol: UDP\nlabels: {'true': true, '1': 1}\n",
    "1: one\n~: nul\ntrue: t\n1.5: f\n2020-01-01: d\n'': empty\n",
    "a: |\n  line\n   more\nb: >-\n  folded\n  text\nc: \"x\\ty\\u00e9\"\nd: 'it''s'\n",
    "a:\nb: ''\nc: \"\"\nd: []\ne: {}\nf: [[], [{}]]\n",
    "a: 1\na: 2\nb: {x: 1, x: 2}\n",
    "just a string\n",
    "- 1\n- [2, {3: 4}]\n",
    "---\n---\n# only a comment\n---\nk: v\n...\n",
    "ключ: значение\n名前: 値\nemoji: \U0001f600\n",
    "url: http://example.com/a?b=c\nq: what?\n",
    "".join(f"---\n# doc {i}\n" + SERVICE.format(name=f"s{i}") for i in range(30)),
    "deep: " + "[" * 200 + "]" * 200 + "\n",
    "\ufeff--- a\n",  # a BOM is skipped, as libyaml skips it for PyYAML (found by a review)
    "\ufeff- a\n - b\n",
    IMPOSSIBLE,
]

# Left to Python: tags, anchors and aliases, merge keys, `=`, complex keys, directives, errors,
# nesting past the C reader's depth, and an explicit key in a flow collection.
LEFT = [
    "b: !!binary aGVsbG8=\n",
    "s: !!str 2024-01-01\n",
    "a: &m {x: 1}\nb: *m\n",
    "base: &b {x: 1}\nd:\n  <<: *b\n",
    "=: 1\n",
    "? [1, 2]\n: v\n",
    "%YAML 1.1\n---\na: 1\n",
    "a: [1, 2\n",
    "deep: " + "[" * 300 + "]" * 300 + "\n",
    "a: [ ? ]\n",
    "a: [ ? ] ]\n",
    "a: !foo bar\n",
    "\ufeffa: 1\n b: 2\n",  # an error after a BOM
]


@built
@pytest.mark.parametrize("text", PLAIN)
def test_plain_data_is_built_in_c_as_python_builds_it(text: str) -> None:
    assert agrees(text) is True


@built
@pytest.mark.parametrize("text", LEFT)
def test_what_is_not_plain_is_left_to_python(text: str) -> None:
    assert agrees(text) is False


@built
@pytest.mark.parametrize("text", TRICKY_YAML)
def test_tricky_yaml_reads_the_same(text: str) -> None:
    assert agrees(text) is not None


@built
def test_each_document_gets_its_content_line_or_the_chunks_are_read_alone() -> None:
    text = "# head\n---\na: 1\n---\n\n\nb: 2\n"
    assert yaml_fast._c_stream(text, split_documents(text)) == [{"a": 1}, {"b": 2}]
    # Chunks that the documents do not fit (a `---` inside a block scalar, say): None, as in Python.
    text = "a: |\n  x\n---\nb: 1\n"
    chunks = [(text, 1)]
    assert yaml_fast._c_stream(text, chunks) is None and yaml_fast.load_stream(text, chunks) is None


@built
def test_an_interrupt_in_the_resolver_is_not_taken_for_not_plain() -> None:
    def interrupted(value: str) -> None:
        raise KeyboardInterrupt

    assert yaml_fast._yamlstream is not None
    yaml_fast._yamlstream.configure(interrupted, b"1")
    try:
        with pytest.raises(KeyboardInterrupt):
            yaml_fast._yamlstream.load("a: 1\n")
    finally:
        yaml_fast._yamlstream.configure(yaml_fast._plain, "".join(sorted(yaml_fast._RESOLVED_FIRST)).encode())


@built
def test_resolved_scalars_keep_their_values_through_the_c_readers_cache() -> None:
    first, second = yaml_fast._c_stream("a: 1.5\nb: 2020-01-01\n", [("", 1)]), yaml_fast._c_stream("a: 1.5\n", [("", 1)])
    assert first == [{"a": 1.5, "b": __import__("datetime").date(2020, 1, 1)}] and second == [{"a": 1.5}]
    assert math.isnan(yaml_fast._c_stream("n: .nan\n", [("", 1)])[0]["n"])  # type: ignore[index]


def test_impossible_dates_and_overlong_integers_read_as_their_text() -> None:
    expected = {"d": "2024-02-30", "t": "2024-13-01T00:00:00Z", "n": "1" * 4301, "m": "-" + "2" * 4400, "ok": datetime.date(2024, 2, 29),
                "h": "0x" + "f" * 3600, "s": "59:" * 2500 + "1", "big": 2**64 - 1}
    assert in_python(IMPOSSIBLE) == [expected]
    assert yaml_fast.load_document(IMPOSSIBLE) == expected == yaml.load(IMPOSSIBLE, Loader=yaml_fast._Loader)  # noqa: S506 (safe)
    if yaml_fast._yamlstream is not None:
        assert yaml_fast._c_stream(IMPOSSIBLE, split_documents(IMPOSSIBLE)) == [expected]


@pytest.mark.parametrize("tagged", ["!!int abc", "!!float abc", "!!bool maybe", "!!timestamp abc"])
def test_a_value_tagged_as_what_it_is_not_is_a_problem_of_its_document(tmp_path: Path, tagged: str) -> None:
    """An explicit tag is not read leniently (go-yaml refuses it too); the document's problem
    names its line and column (a review found `!!float abc` and the others still raising)."""
    (tmp_path / "svc.yaml").write_text(SERVICE.format(name="web") + "---\n" + SERVICE.format(name="api").replace("port: 80", f"port: {tagged}"))
    store = ManifestStore(tmp_path, Config())
    store.refresh()
    value, kind = tagged.split()[1], tagged.split()[0][2:]
    assert [str(p) for p in store.problems()] == [f"error: svc.yaml:15 (document 1): invalid YAML: '{value}' is not a valid {kind} (column 11)"]
    assert agrees(f"a: {tagged}\n") is False  # the C reader leaves it to Python, which refuses it


def test_a_service_annotated_with_an_impossible_date_is_read(tmp_path: Path) -> None:
    (tmp_path / "svc.yaml").write_text(SERVICE.format(name="web").replace("metadata:\n", "metadata:\n  annotations:\n    built: 2024-02-30\n"))
    store = ManifestStore(tmp_path, Config())
    store.refresh()
    assert [o.name for o in store.objects()] == ["web"] and store.problems() == []


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["yes", "No", "on", "~", "0o17", "0x1f", "1_0", "1:30", ".inf", "2001-01-01", "08", "+1", "-", "- a", ": x", "#c", "''"]),
)  # fmt: skip
keys = st.one_of(st.text(alphabet=string.ascii_letters + string.digits + "-._/", max_size=10), st.integers(), st.booleans(), st.none())
data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25)


@built
@settings(max_examples=300, deadline=None)
@given(st.lists(data, min_size=1, max_size=4), st.sampled_from([False, True, None]), st.booleans())
def test_dumped_data_is_built_in_c_as_python_builds_it(documents: list, flow: bool | None, unicode: bool) -> None:
    text = yaml.safe_dump_all(documents, default_flow_style=flow, allow_unicode=unicode, explicit_start=True)
    verdict = agrees(text)
    assert verdict is not None
    explicit_key = "[" in text and yaml_fast._FLOW_EXPLICIT_KEY.search(text)  # `? key` beside a `[`: left to Python
    # A YAML 1.1 line break written raw (NEL, LS, PS: allow_unicode keeps them) counts as a line
    # for libyaml and not for the `---` split, so both readings read the chunks alone (found
    # by a random draw: ['\x85', [], None]).
    line_break = any(c in text for c in "\x85\u2028\u2029")
    if not explicit_key and not line_break:
        assert verdict is True


@built
@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.text(alphabet="\n -:#[]{}?&*!|>'\",%@`\\\t0aé", min_size=1, max_size=4))
def test_damaged_manifests_read_as_python_reads_them(at: int, inserted: str) -> None:
    text = "".join("---\n" + SERVICE.format(name=f"s{i}") for i in range(3))
    at %= len(text)
    assert agrees(text[:at] + inserted + text[at:]) is not None
