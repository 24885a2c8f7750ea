"""Options of an exploration: defaults, validation, and where each value comes from.

Precedence, highest first: the pytest command line (``--plait-*``), the decorator's
arguments, the ini file (``plait_*`` keys), the defaults below. The command line wins over
the decorator because it is the most explicit intent at run time (a CI job asking for a
bigger budget, a developer replaying one token).
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from dataclasses import dataclass
from typing import Any

from plait.errors import ConfigError

STRATEGIES = ("auto", "dpor", "dfs", "random", "pct")
"""``auto`` runs an exhaustive search on the first half of the budget (``dpor``, optimal
partial-order reduction, where plait records footprints: threads; ``dfs`` elsewhere) and,
when that is not enough to exhaust the space, spends the rest on ``pct``."""


@dataclass(frozen=True)
class Options:
    strategy: str = "auto"
    max_executions: int = 1000
    max_seconds: float | None = 60.0
    seed: int = 0
    stop_on_first: bool = True
    preemption_bound: int | None = None
    delay_bound: int | None = None
    pct_depth: int = 3
    timer_slack: float = 0.1
    replay: str | None = None
    granularity: str = "access"
    atomicity: str = "free-threaded"
    trace_modules: tuple[str, ...] = ()
    skip_modules: tuple[str, ...] = ()
    hang_timeout: float = 10.0
    races: str = "warn"
    shrink: bool = True
    shrink_executions: int = 500
    shrink_seconds: float = 10.0
    test: str = ""  # the explored function's qualified name (set by plait, kept in tokens)
    html: str | None = None  # a directory: write an HTML timeline of each failure there
    html_races: bool = False  # ... and of each RaceWarning
    workers: int = 1  # processes exploring one test together (plait.workers)

    def merged(self, **overrides: Any) -> Options:
        """These options with every non-None override applied, validated."""
        fields = _FIELDS or {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(unknown_options("plait", unknown))
        values = {k: v for k, v in overrides.items() if v is not None}
        if not values:  # nothing to change: options are validated when made (or default)
            return self
        return validate(dataclasses.replace(self, **values))


_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(Options))


PUBLIC = ("strategy", "max_executions", "max_seconds", "seed", "stop_on_first",
          "preemption_bound", "delay_bound", "pct_depth", "timer_slack", "granularity",
          "atomicity", "trace_modules", "skip_modules", "hang_timeout", "races", "shrink",
          "html", "html_races", "workers")


def unknown_options(where: str, names: Any) -> str:
    """``where`` got options it does not know: name them, with the closest known one."""
    import difflib

    parts = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, PUBLIC, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (f"{where} got unknown option(s) {', '.join(parts)}; accepted: "
            f"{', '.join(PUBLIC)}")


def _int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value), 10)
        except ValueError:
            raise ConfigError(f"plait option {name} must be a whole number, got {value!r}") from None
    if value < minimum:
        raise ConfigError(f"plait option {name} must be at least {minimum}, got {value}")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"plait option {name} must be true or false, got {value!r}")


def _float(name: str, value: Any, *, minimum: float, strict: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"plait option {name} must be a number, got {value!r}") from None
    if number < minimum or (strict and number == minimum) or number != number:
        bound = "greater than" if strict else "at least"
        raise ConfigError(f"plait option {name} must be {bound} {minimum}, got {value!r}")
    return number


def _directory(name: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if os.path.exists(text) and not os.path.isdir(text):
        raise ConfigError(f"plait option {name} must be a directory, got the file {text!r}")
    return text


def validate(options: Options) -> Options:
    strategy = str(options.strategy).strip().lower()
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"plait option strategy={options.strategy!r} is not known; accepted: "
            f"{', '.join(STRATEGIES)}"
        )
    for name, value, accepted in (("granularity", options.granularity, GRANULARITIES),
                                  ("atomicity", options.atomicity, ATOMICITY),
                                  ("races", options.races, ("warn", "error", "ignore"))):
        if value not in accepted:
            raise ConfigError(
                f"plait option {name}={value!r} is not known; accepted: {', '.join(accepted)}"
            )
    modules: dict[str, Any] = {}
    for name in ("trace_modules", "skip_modules"):
        given: Any = getattr(options, name)
        if isinstance(given, str):
            given = tuple(v.strip() for v in given.replace(",", " ").split() if v.strip())
        if not all(isinstance(v, str) for v in given):
            raise ConfigError(f"plait option {name} must be module names or paths, got {given!r}")
        modules[name] = tuple(given)
    replay = options.replay
    if replay is not None:
        replay = str(replay).strip()
        if not replay:
            replay = None
    return dataclasses.replace(
        options,
        strategy=strategy,
        max_executions=_int("max_executions", options.max_executions, minimum=1),
        max_seconds=None if options.max_seconds is None
        else _float("max_seconds", options.max_seconds, minimum=0.0, strict=True),
        seed=_int("seed", options.seed, minimum=0),
        stop_on_first=bool(options.stop_on_first),
        preemption_bound=None if options.preemption_bound is None
        else _int("preemption_bound", options.preemption_bound, minimum=0),
        delay_bound=None if options.delay_bound is None
        else _int("delay_bound", options.delay_bound, minimum=0),
        pct_depth=_int("pct_depth", options.pct_depth, minimum=1),
        timer_slack=_float("timer_slack", options.timer_slack, minimum=0.0),
        replay=replay,
        hang_timeout=_float("hang_timeout", options.hang_timeout, minimum=0.0, strict=True),
        shrink=_bool("shrink", options.shrink),
        shrink_executions=_int("shrink_executions", options.shrink_executions, minimum=0),
        shrink_seconds=_float("shrink_seconds", options.shrink_seconds, minimum=0.0),
        html=_directory("html", options.html),
        html_races=_bool("html_races", options.html_races),
        workers=_int("workers", options.workers, minimum=1),
        **modules,
    )


# -- the settings that change what a schedule means, carried inside every token -----------
_SETTINGS_VERSION = 3  # 3 added the test's fingerprint; 2 is still read


# what a thread step is made of, and whether a bytecode is atomic (plait.threads.tracing)
GRANULARITIES = ("access", "line", "sync")
ATOMICITY = ("free-threaded", "gil")


def test_fingerprint(name: str) -> int:
    """Four bytes that tell tests apart in a token (0: unknown). By the function's qualified
    name, which pytest, ``plait run`` and direct calls all agree on."""
    return zlib.crc32(name.encode()) or 1 if name else 0


def encode_settings(options: Options) -> bytes:
    """Semantics-changing settings as the token's opaque bytes: version, granularity and
    atomicity (one byte), timer slack (µs, varint), the test's fingerprint (4 bytes)."""
    mode = GRANULARITIES.index(options.granularity) | (ATOMICITY.index(options.atomicity) << 2)
    out = bytearray([_SETTINGS_VERSION, mode])
    value = round(options.timer_slack * 1_000_000)
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            break
    out += test_fingerprint(options.test).to_bytes(4, "little")
    return bytes(out)


def token_test(data: bytes) -> int:
    """The fingerprint of the test a token's settings were recorded for (0: unknown)."""
    if not data or data[0] != _SETTINGS_VERSION or len(data) < 7:
        return 0
    return int.from_bytes(data[-4:], "little")


def decode_settings(data: bytes) -> dict[str, Any]:
    if not data or data[0] not in (2, _SETTINGS_VERSION):
        raise ConfigError("the token's settings come from another plait version")
    if len(data) < 3 or (data[1] & 3) >= len(GRANULARITIES) or (data[1] >> 2) >= len(ATOMICITY):
        raise ConfigError("the token's settings are damaged")
    mode = data[1]
    value = shift = 0
    for byte in data[2:]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return {"timer_slack": value / 1_000_000, "granularity": GRANULARITIES[mode & 3],
            "atomicity": ATOMICITY[mode >> 2]}


# Session-wide defaults, filled in by the pytest plugin from ini and command line.
ini_defaults: dict[str, Any] = {}
cli_overrides: dict[str, Any] = {}


def resolve(decorator_kwargs: dict[str, Any]) -> Options:
    options = Options().merged(**ini_defaults)
    options = options.merged(**decorator_kwargs)
    return options.merged(**cli_overrides)
