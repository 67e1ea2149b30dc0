"""@frozen builds the very objects dataclass(frozen=True, slots=True) builds, and keeps them read-only."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from dataclasses import field

import pytest

from clusterdns.frozen import frozen
from clusterdns.model import Pod, Source
from clusterdns.objects import kinds as k8s


def _both(body: dict) -> tuple[type, type]:
    """The same class made by @frozen and by dataclasses alone."""
    ours = frozen(type("Thing", (), dict(body)))
    theirs = dataclasses.dataclass(frozen=True, slots=True)(type("Thing", (), dict(body)))
    return ours, theirs


BODY = {
    "__annotations__": {"name": "str", "port": "int", "tags": "tuple", "source": "Source"},
    "port": 53,
    "tags": (),
    "source": field(default_factory=Source),
}


@pytest.mark.parametrize(
    "args, kwargs",
    [(("a",), {}), (("a", 5353), {}), (("a",), {"tags": ("x",)}), (("a", 1, ("y",), Source("f", "0", 3)), {}), ((), {"name": "b", "source": Source("g")})],
)
def test_same_fields_as_dataclasses(args: tuple, kwargs: dict) -> None:
    ours, theirs = _both(BODY)
    made, expected = ours(*args, **kwargs), theirs(*args, **kwargs)
    assert dataclasses.astuple(made) == dataclasses.astuple(expected)
    assert repr(made) == repr(expected)


def test_same_signature_and_errors() -> None:
    ours, theirs = _both(BODY)
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))
    for args, kwargs in [((), {}), (("a", 1, (), Source(), "extra"), {}), (("a",), {"name": "b"}), (("a",), {"nope": 1})]:
        with pytest.raises(TypeError):
            theirs(*args, **kwargs)
        with pytest.raises(TypeError):
            ours(*args, **kwargs)


def test_read_only_hashable_and_picklable() -> None:
    pod = Pod("default", "web-0", (("app", "web"),), ips=("10.244.0.5",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        pod.name = "other"  # type: ignore[misc]
    assert Pod("default", "web-0", (("app", "web"),), ips=("10.244.0.5",)) == pod
    assert hash(Pod("default", "web-0", (("app", "web"),), ips=("10.244.0.5",))) == hash(pod)
    assert pickle.loads(pickle.dumps(pod)) == pod
    assert dataclasses.replace(pod, name="web-1").name == "web-1"
    assert Pod("a", "b").source is not Pod("a", "b").source  # a fresh default per object, as default_factory gives


def test_subclass_fields() -> None:
    """A Deployment (a Workload subclass) sets its parent's fields as well as its own."""
    d = k8s.Deployment("default", "web", 3)
    assert (d.namespace, d.name, d.replicas) == ("default", "web", 3)
    assert d == dataclasses.replace(d)
    again = pickle.loads(pickle.dumps(d))
    assert type(again) is k8s.Deployment and again == d


@pytest.mark.parametrize(
    "body",
    [
        {"__annotations__": {"name": "str"}, "__post_init__": lambda self: None},
        {"__annotations__": {"name": "str", "port": "int"}, "port": field(default=53, init=False)},
        {"__annotations__": {"name": "str"}, "name": field(kw_only=True)},
    ],
)
def test_what_its_init_cannot_do_is_refused(body: dict) -> None:
    with pytest.raises(TypeError, match="@frozen"):
        frozen(type("Thing", (), dict(body)))


def test_a_maker_builds_the_object_the_class_builds() -> None:
    """maker(): every field's value in order, straight into the slots (_frozen.c), the same
    object (equal, same repr and hash, read-only, tracked by the collector, pickles alike)."""
    import gc

    from clusterdns import frozen as frozen_module
    from clusterdns.frozen import maker

    names = tuple(f.name for f in dataclasses.fields(Pod))
    make = maker(Pod, *names)
    values = ("ns", "web-0", (("app", "web"),), "web-0", "web", "node1", (), ("10.0.0.1",), "Running", True, False, (("StatefulSet", "web"),), Source("f", "0", 3))
    made, expected = make(*values), Pod(*values)
    assert type(made) is Pod and made == expected and repr(made) == repr(expected) and hash(made) == hash(expected)
    assert pickle.loads(pickle.dumps(made)) == expected and gc.is_tracked(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.name = "x"  # type: ignore[misc]
    if frozen_module._c_maker is not None:
        assert make is not Pod
        with pytest.raises(TypeError):
            make(*values[:-1])
        with pytest.raises(TypeError):
            frozen_module._c_maker(Pod, ("name", "name"))  # a slot named twice
        with pytest.raises(TypeError):
            frozen_module._c_maker(int, ("real",))  # not a slotted class of ours

        @frozen
        class OnDict(dict):  # type: ignore[type-arg]
            x: int

        with pytest.raises(TypeError):  # a C base's own state would be left unset (a review made this crash)
            frozen_module._c_maker(OnDict, ("x",))


def test_a_maker_refuses_fields_out_of_order() -> None:
    from clusterdns.frozen import maker

    with pytest.raises(RuntimeError, match="built positionally"):
        maker(Source, "doc", "file", "line")
