"""``monkeypatch`` in cooperative tests, and the warning when two of them collide.

Patches of globals are seen by every test running at the time. Each test's
``monkeypatch`` reports what it patches to a registry; when a test patches a target
that another running test has patched, plait warns and names both tests.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Generator
from typing import Any

from _pytest.monkeypatch import MonkeyPatch


class PatchRegistry:
    """Which running test patched which global, to warn when two overlap."""

    def __init__(self) -> None:
        self.owners: dict[tuple[Any, ...], Any] = {}
        self.warned: set[tuple[Any, ...]] = set()

    def claim(self, key: tuple[Any, ...], owner: Any, what: Callable[[], str]) -> None:
        other = self.owners.get(key)
        if other is not None and other is not owner and key not in self.warned:
            from plait.cooperative import PlaitCooperativeWarning

            self.warned.add(key)
            warnings.warn(
                PlaitCooperativeWarning(
                    f"{owner.nodeid} and {other.nodeid} both monkeypatch {what()} while "
                    "running concurrently; patches of globals are shared by cooperative "
                    "tests. Take a plait.cooperative.Lock in a fixture around them."
                ),
                stacklevel=4,  # the user code calling monkeypatch
            )
        self.owners[key] = owner

    def release(self, owner: Any) -> None:
        for key in [k for k, v in self.owners.items() if v is owner]:
            del self.owners[key]


def watch(patch: MonkeyPatch, registry: PatchRegistry, owner: Any) -> MonkeyPatch:
    """Make ``patch`` (a real MonkeyPatch) tell ``registry`` what it patches.

    MonkeyPatch is final, so its methods are wrapped on the instance.
    """
    setattr_, delattr_ = patch.setattr, patch.delattr
    setitem, delitem = patch.setitem, patch.delitem
    chdir, syspath_prepend, undo = patch.chdir, patch.syspath_prepend, patch.undo

    def claim_attr() -> None:
        obj, name, _ = patch._setattr[-1]
        registry.claim(("attr", id(obj), name), owner, lambda: f"{_describe(obj)}.{name}")

    def claim_item(dic: Any, name: Any) -> None:
        registry.claim(("item", id(dic), name), owner, lambda: _describe_item(dic, name))

    @functools.wraps(setattr_)
    def watched_setattr(*args: Any, **kwargs: Any) -> None:
        setattr_(*args, **kwargs)
        claim_attr()

    @functools.wraps(delattr_)
    def watched_delattr(*args: Any, **kwargs: Any) -> None:
        count = len(patch._setattr)
        delattr_(*args, **kwargs)
        if len(patch._setattr) > count:
            claim_attr()

    @functools.wraps(setitem)
    def watched_setitem(dic: Any, name: Any, value: Any) -> None:
        setitem(dic, name, value)
        claim_item(dic, name)

    @functools.wraps(delitem)
    def watched_delitem(dic: Any, name: Any, raising: bool = True) -> None:
        delitem(dic, name, raising=raising)
        claim_item(dic, name)

    @functools.wraps(chdir)
    def watched_chdir(path: Any) -> None:
        chdir(path)
        registry.claim(("cwd",), owner, lambda: "the working directory")

    @functools.wraps(syspath_prepend)
    def watched_syspath_prepend(path: Any) -> None:
        syspath_prepend(path)
        registry.claim(("sys.path",), owner, lambda: "sys.path")

    @functools.wraps(undo)
    def watched_undo() -> None:
        undo()
        registry.release(owner)

    vars(patch).update(
        setattr=watched_setattr,
        delattr=watched_delattr,
        setitem=watched_setitem,
        delitem=watched_delitem,
        chdir=watched_chdir,
        syspath_prepend=watched_syspath_prepend,
        undo=watched_undo,
    )
    return patch


def _describe(obj: Any) -> str:
    name = getattr(obj, "__name__", None)
    return name if isinstance(name, str) else type(obj).__name__


def _describe_item(dic: Any, name: Any) -> str:
    if dic is os.environ:
        return f"the environment variable {name}"
    return f"the dict item [{name!r}]"


def monkeypatch_fixture(registry: PatchRegistry, item: Any) -> Generator[MonkeyPatch]:
    patch = watch(MonkeyPatch(), registry, item)
    try:
        yield patch
    finally:
        patch.undo()
