"""Turn what the user passed into a list of calls: (function, args, kwargs), validated early."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any

Target = Callable[..., Any] | str


@dataclasses.dataclass(frozen=True)
class Call:
    target: Target  # a callable, or "package.module:function"
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def name(self) -> str:
        return describe(self.target)


def describe(target: Target) -> str:
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None) or "?"
    qualname = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}:{qualname}"


def resolve(target: Target) -> Callable[..., Any]:
    """Return the function a target names; a string is "package.module:function[.attr...]"."""
    if not isinstance(target, str):
        return target
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(
            f"function path {target!r} must look like 'package.module:function' "
            "(a colon between the module and the name)"
        )
    value: Any = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise AttributeError(f"{target!r}: {value!r} has no attribute {attr!r}") from None
    if not callable(value):
        raise TypeError(f"{target!r} names {value!r}, which is not callable")
    return value


def normalize(call: object, position: int) -> Call:
    """Accept f, "mod:f", (f,), (f, kwargs), (f, args) or (f, args, kwargs)."""
    if callable(call) or isinstance(call, str):
        return Call(call, (), {})
    if isinstance(call, tuple | list) and 1 <= len(call) <= 3:
        target, *rest = call
        args: Any = ()
        kwargs: Any = {}
        if len(rest) == 1:
            if isinstance(rest[0], Mapping):
                kwargs = rest[0]
            else:
                args = rest[0]
        elif len(rest) == 2:
            args, kwargs = rest
        if (callable(target) or isinstance(target, str)) and isinstance(args, tuple | list):
            if isinstance(kwargs, Mapping) and all(isinstance(k, str) for k in kwargs):
                return Call(target, tuple(args), dict(kwargs))
    raise TypeError(
        f"calls[{position}] must be a function, a 'package.module:function' string, or a tuple "
        f"(function, args, kwargs) / (function, kwargs) / (function, args); got {call!r}"
    )
