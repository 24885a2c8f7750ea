"""Scheduling points inside the user's own code: at each shared access, or each line.

Which code: everything that is not the standard library, not site-packages and not plait
(the test module included), widened or narrowed with ``trace_modules`` / ``skip_modules``.
On 3.12+ it uses ``sys.monitoring`` (INSTRUCTION events on the user's code objects only,
returning DISABLE at every offset that is not an access, so the cost stays on the accesses);
on 3.11 it uses ``sys.settrace`` with opcode events on the user's frames only.

Atomicity models: ``free-threaded`` switches before every visible access; ``gil`` switches
only where a GIL build can (calls and backward jumps), and still records the accesses.
"""

from __future__ import annotations

import dis
import os
import sys
import sysconfig
import types
from collections.abc import Callable
from typing import Any

from plait.footprint import Access
from plait.threads.scheduler import Scheduler

_ACCESS = {
    "LOAD_ATTR": ("attr", False), "STORE_ATTR": ("attr", True), "DELETE_ATTR": ("attr", True),
    "LOAD_GLOBAL": ("global", False), "STORE_GLOBAL": ("global", True),
    "DELETE_GLOBAL": ("global", True),
    "LOAD_DEREF": ("cell", False), "LOAD_CLASSDEREF": ("cell", False),
    "STORE_DEREF": ("cell", True), "DELETE_DEREF": ("cell", True),
    "BINARY_SUBSCR": ("item", False), "STORE_SUBSCR": ("item", True),
    "DELETE_SUBSCR": ("item", True), "BINARY_SLICE": ("item", False),
    "STORE_SLICE": ("item", True),
}
_GIL_SWITCH = {"CALL", "CALL_FUNCTION_EX", "CALL_KW", "JUMP_BACKWARD"}

# Methods of the built-in containers, C code that tracing cannot enter: loading one of
# these names is taken as a read or a write of "some container's items" (the container
# itself is on the value stack, out of Python's sight), which keeps reduction sound.
_MUTATORS = frozenset({
    "append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "add",
    "discard", "popitem", "sort", "reverse", "appendleft", "popleft", "extendleft", "rotate",
    "__setitem__", "__delitem__", "__iadd__", "difference_update", "intersection_update",
    "symmetric_difference_update",
})
_READERS = frozenset({
    "get", "keys", "values", "items", "copy", "count", "index", "__getitem__",
    "__contains__", "__len__", "__iter__", "issubset", "issuperset", "union", "intersection",
    "difference",
})


_EXCLUDED = tuple(sorted({
    os.path.realpath(p) for key in ("stdlib", "platstdlib", "purelib", "platlib")
    if (p := sysconfig.get_paths().get(key))
}))
_PLAIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MISSING = object()

# What a code object holds, by offset: (kind, write, name) for accesses; "switch" for GIL points.
Info = tuple[str, bool, str] | str


class Selection:
    """Which files are the user's."""

    def __init__(self, include: list[str] | None, exclude: list[str] | None) -> None:
        self.include = [self._path_of(m) for m in include or []]
        self.exclude = [self._path_of(m) for m in exclude or []]
        self.cache: dict[str, bool] = {}

    @staticmethod
    def _path_of(target: str) -> str:
        if os.sep in target or target.endswith(".py"):
            return os.path.realpath(target)
        import importlib.util

        spec = importlib.util.find_spec(target)
        if spec is None or spec.origin is None:
            raise ValueError(f"cannot find module {target!r} to trace or skip")
        origin = spec.origin
        if spec.submodule_search_locations:
            return os.path.dirname(os.path.realpath(origin))
        return os.path.realpath(origin)

    def wants(self, filename: str) -> bool:
        known = self.cache.get(filename)
        if known is not None:
            return known
        path = os.path.realpath(filename) if not filename.startswith("<") else filename
        if any(path.startswith(p) for p in self.exclude):
            result = False
        elif any(path.startswith(p) for p in self.include):
            result = True
        elif filename.startswith("<") or path.startswith(_PLAIT):
            # generated code (dataclasses, namedtuple, exec'd strings) and plait itself
            result = False
        else:
            result = not path.startswith(_EXCLUDED)
        self.cache[filename] = result
        return result


class Tracer:
    """Turns instructions of the user's code into scheduling points of the running actor."""

    def __init__(self, sched: Scheduler, *, granularity: str, atomicity: str,
                 selection: Selection) -> None:
        self.sched = sched
        self.granularity = granularity
        self.gil = atomicity == "gil"
        self.selection = selection
        self.maps: dict[types.CodeType, dict[int, Info]] = {}
        self.backend: _Backend | None = None

    def offsets(self, code: types.CodeType) -> dict[int, Info]:
        found = self.maps.get(code)
        if found is None:
            found = {}
            previous = None
            for ins in dis.get_instructions(code):
                access = _ACCESS.get(ins.opname)
                if access is not None:
                    if (ins.opname == "LOAD_ATTR" and previous is not None
                            and previous.opname == "LOAD_GLOBAL"):
                        # `module.name` / `Class.name`: decided at run time by what the
                        # global holds (see on_instruction)
                        found[ins.offset] = ("modattr", False, f"{previous.argval}.{ins.argval}")
                    elif (access[0] == "attr" and previous is not None
                          and previous.opname in ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE")):
                        # `name.attr`: the variable's name lets a report say whose attribute
                        found[ins.offset] = ("attr", access[1],
                                             f"{ins.argval}@{previous.argval}")
                    else:
                        found[ins.offset] = (access[0], access[1], str(ins.argval))
                elif self.gil and ins.opname in _GIL_SWITCH:
                    found[ins.offset] = "switch"
                if ins.opname != "CACHE":
                    previous = ins
            self.maps[code] = found
        return found

    def on_instruction(self, frame: types.FrameType, info: Info) -> None:
        sched = self.sched
        if sched is None or sched.over or sched.me() is None:
            return
        where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        if isinstance(info, str):
            if not sched.me().no_points:  # type: ignore[union-attr]
                sched.point("may switch here (GIL)", None, where)
            return
        kind, write, name = info
        if kind == "modattr":
            owner_name, _, name = name.partition(".")
            owner = frame.f_globals.get(owner_name, _MISSING)
            if owner is _MISSING or isinstance(owner, (types.ModuleType, type)):
                return  # threading.Thread, Enum.member...: not shared mutable state
            kind = "attr"
        if kind == "global" and not write:
            value = frame.f_globals.get(name, _MISSING)
            if value is _MISSING or callable(value) or isinstance(value, types.ModuleType):
                return  # builtins, functions, classes, modules: not shared state worth a switch
        access = _access(frame, kind, write, name, sched.trace is not None)
        access.where = where
        if self.gil or sched.me().no_points:  # type: ignore[union-attr]
            sched.note(access)
            return
        verb = "writes" if write else "reads"
        sched.point(f"{verb} {access.what}", access, where)

    def on_line(self, frame: types.FrameType) -> None:
        sched = self.sched
        me = sched.me() if sched is not None else None
        if sched is None or sched.over or me is None or me.no_points:
            return
        where = (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)
        sched.point("line", None, where)

    def start(self) -> None:
        if self.granularity == "sync":
            return
        self.backend = _Monitoring(self) if hasattr(sys, "monitoring") else _Settrace(self)
        self.backend.start()

    def stop(self) -> None:
        if self.backend is not None:
            self.backend.stop()
            self.backend = None

    def enable_in_this_thread(self) -> None:
        if self.backend is not None:
            self.backend.enable_in_this_thread()

    def thread_trace_function(self) -> Callable[..., Any] | None:
        """3.11: the function ``sys.settrace`` runs in traced threads; None under
        ``sys.monitoring`` (per code object already) or when nothing is traced. Callers turn
        it off where only plait's and asyncio's own code runs: on 3.11 every Python call
        there costs a call of it."""
        backend = self.backend
        return backend._global if isinstance(backend, _Settrace) else None


def _access(frame: types.FrameType, kind: str, write: bool, name: str,
            describe: bool = False) -> Access:
    if kind == "global":
        return Access(hash(("global", id(frame.f_globals), name)), write, f"global {name}", None)
    if kind == "cell":
        return Access(hash(("cell", frame.f_code.co_qualname, name)), write,
                      f"variable {name} of {frame.f_code.co_qualname}", None)
    if kind == "item":
        # The container is on the value stack, which Python cannot see: all subscripts share
        # one key, an over-approximation that keeps partial-order reduction sound.
        return Access(hash(("item",)), write, "an item of a container", None)
    # Attribute of an object plait cannot see: keyed by name (sound over-approximation).
    name, _, variable = name.partition("@")
    if not write and name in _MUTATORS:
        return Access(hash(("item",)), True, f"a container's items (.{name}())", None)
    if not write and name in _READERS:
        return Access(hash(("item",)), False, f"a container's items (.{name}())", None)
    owner = _guess_owner(frame, name, variable) if describe else ""
    return Access(hash(("attr", name)), write, f"{owner}.{name}" if owner else f".{name}", None)


def _guess_owner(frame: types.FrameType, name: str, variable: str = "") -> str:
    """A readable owner for a report: the class of the variable (or of `self`) holding it."""
    this = frame.f_locals.get(variable or "self")
    if this is not None and (name in getattr(this, "__dict__", {}) or hasattr(type(this), name)):
        return type(this).__name__
    return ""


class _Backend:
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def enable_in_this_thread(self) -> None: ...


class _Settrace(_Backend):
    """3.11: opcode events on the user's frames only."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.previous: Any = None

    def _global(self, frame: types.FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        tracer = self.tracer
        if event != "call" or not tracer.selection.wants(frame.f_code.co_filename):
            return None
        if tracer.sched is None or tracer.sched.me() is None:
            return None
        if tracer.granularity == "line":
            return self._line
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        offsets = tracer.offsets(frame.f_code)
        if not offsets:
            return None

        def local(frame: types.FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                info = offsets.get(frame.f_lasti)
                if info is not None:
                    tracer.on_instruction(frame, info)
            return local

        return local

    def _line(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            self.tracer.on_line(frame)
        return self._line

    def start(self) -> None:
        self.previous = sys.gettrace()
        sys.settrace(self._global)

    def enable_in_this_thread(self) -> None:
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(self.previous)


class _Monitoring(_Backend):
    """3.12+: sys.monitoring, INSTRUCTION (or LINE) events on the user's code objects only."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.tool = -1
        self.local: set[types.CodeType] = set()

    def start(self) -> None:
        mon = sys.monitoring  # type: ignore[attr-defined]
        for tool in (4, 3, 5):
            if mon.get_tool(tool) is None:
                self.tool = tool
                break
        else:
            raise RuntimeError("no free sys.monitoring tool id (3, 4 and 5 are taken)")
        mon.use_tool_id(self.tool, "plait")
        events = mon.events
        mon.register_callback(self.tool, events.PY_START, self._start)
        mon.register_callback(self.tool, events.INSTRUCTION, self._instruction)
        mon.register_callback(self.tool, events.LINE, self._line)
        mon.set_events(self.tool, events.PY_START)

    def _start(self, code: types.CodeType, offset: int) -> Any:
        mon = sys.monitoring  # type: ignore[attr-defined]
        tracer = self.tracer
        if not tracer.selection.wants(code.co_filename):
            return mon.DISABLE
        if code not in self.local:
            self.local.add(code)
            if tracer.granularity == "line":
                mon.set_local_events(self.tool, code, mon.events.LINE)
            elif tracer.offsets(code):
                mon.set_local_events(self.tool, code, mon.events.INSTRUCTION)
        return None

    def _instruction(self, code: types.CodeType, offset: int) -> Any:
        info = self.tracer.maps.get(code, {}).get(offset)
        if info is None:
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        self.tracer.on_instruction(sys._getframe(1), info)
        return None

    def _line(self, code: types.CodeType, line: int) -> Any:
        self.tracer.on_line(sys._getframe(1))
        return None

    def stop(self) -> None:
        mon = sys.monitoring  # type: ignore[attr-defined]
        if self.tool < 0:
            return
        for code in self.local:
            mon.set_local_events(self.tool, code, 0)
        mon.set_events(self.tool, 0)
        for event in (mon.events.PY_START, mon.events.INSTRUCTION, mon.events.LINE):
            mon.register_callback(self.tool, event, None)
        mon.free_tool_id(self.tool)
        mon.restart_events()
        self.tool = -1

