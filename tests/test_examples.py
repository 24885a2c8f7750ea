"""The bundled examples: each bug is found, each fix passes exhaustively, replays are exact."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

import plait
from plait.errors import Deadlock, InterleavingFailure

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

BUGGY = {
    "lost_update": "test_two_increments",
    "check_then_act": "test_withdrawals",
    "startup_order": "test_startup",
    "counter_threads": "test_counter",
    "bank_transfer": "test_transfers_conserve_money",
    "file_writer": "test_file_writers",
    "lock_order_deadlock": "test_lock_order",
    "async_mock": "test_retries_charge_once",
}
FIXED = {
    "lost_update": "test_two_increments_locked",
    "check_then_act": "test_withdrawals_locked",
    "startup_order": "test_startup_waits_for_ready",
    "counter_threads": "test_counter_locked",
    "bank_transfer": "test_locked_transfers_conserve_money",
    "file_writer": "test_file_writers_locked",
    "lock_order_deadlock": "test_same_lock_order",
    "async_mock": "test_retries_charge_once_locked",
}


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"plait_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("module", sorted(BUGGY))
def test_bug_is_found_and_replays_every_time(module: str) -> None:
    test = getattr(_load(module), BUGGY[module])
    with pytest.raises(InterleavingFailure) as caught:
        test.explore()
    failure = caught.value
    assert failure.token.startswith("plait1:")
    assert "Steps, in the order they ran" in failure.report
    expected = Deadlock if module == "lock_order_deadlock" else AssertionError
    assert isinstance(failure.__cause__, expected)
    replayed = plait.replay(failure.token)(test)
    messages = set()
    for _ in range(20):
        with pytest.raises(InterleavingFailure) as again:
            replayed.explore()
        assert type(again.value.__cause__) is type(failure.__cause__)
        messages.add(str(again.value.__cause__))
    assert len(messages) == 1  # the same failure, every time


@pytest.mark.parametrize("module", sorted(FIXED))
def test_fix_passes_exhaustively(module: str) -> None:
    result = getattr(_load(module), FIXED[module]).explore()
    assert result.exhausted
    assert result.failure is None


def test_lost_update_found_within_a_handful() -> None:
    test = _load("lost_update").test_two_increments
    with pytest.raises(InterleavingFailure) as caught:
        test.explore()
    assert caught.value.stats["executions"] <= 6


def test_cli_demo_shows_bug_and_replay(capsys: pytest.CaptureFixture[str]) -> None:
    from plait.cli import main

    assert main(["demo", str(EXAMPLES / "lost_update.py"), "--replays", "2"]) == 0
    out = capsys.readouterr().out
    assert "FAILED" in out and "replay 2: fails again (AssertionError)" in out
    assert "plait demo: 1 bug(s) found, each replayed 2 times from its token; 1 fixed" in out
    assert main(["run", str(EXAMPLES / "lost_update.py")]) == 1


def test_thread_examples_name_the_race_and_the_deadlock() -> None:
    with pytest.raises(InterleavingFailure) as caught:
        _load("counter_threads").test_counter.explore()
    assert "Counter.value: " in caught.value.report
    with pytest.raises(InterleavingFailure) as caught:
        _load("lock_order_deadlock").test_lock_order.explore()
    assert "holds the lock `" in caught.value.report and "(created at " in caught.value.report
