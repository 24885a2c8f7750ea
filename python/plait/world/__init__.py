"""The outside world as steps: files, the OS, sockets, subprocesses, SQL statements.

:func:`external_step` is the one mechanism: a call that touches state outside the
interpreter, described by its :class:`Effect` s on canonical keys. Both drivers feed it
(a thread actor takes a scheduling point; an asyncio task step takes the footprint into the
current step). ``plait.world.files`` uses it for the file system and the OS without any
annotation in the code under test; ``plait.sql`` uses it for statements.
"""

from plait.world import _step, intercept
from plait.world._step import (
    OUTSIDE,
    Effect,
    activate,
    active,
    block,
    current_actor,
    deactivate,
    external_call,
    external_step,
    hold,
    key_hash,
    release,
    wake,
)

_step._INTERCEPT.append(intercept)  # the interception of unannotated calls, built on _step
add_trampolines = intercept.add_trampolines

__all__ = ["OUTSIDE", "Effect", "activate", "active", "add_trampolines", "block", "current_actor",
           "deactivate",
           "external_call",
           "external_step", "hold", "key_hash", "release", "wake"]
