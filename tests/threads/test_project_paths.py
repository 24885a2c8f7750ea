"""A project that lives in a folder named ``plait`` (a clone of plait itself, or a user's):
its frames are the user's. plait recognises its own frames by the installed package's real
path, never by a ``"/plait/"`` substring."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import plait
from plait.errors import Deadlock, InterleavingFailure

PROGRAM = '''
import threading

def take(first, second):
    with first:
        with second:
            pass

def deadlock():
    lock_a, lock_b = threading.Lock(), threading.Lock()
    one = threading.Thread(target=take, args=(lock_a, lock_b))
    two = threading.Thread(target=take, args=(lock_b, lock_a))
    one.start()
    two.start()
    one.join()
    two.join()

class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        value = self.value
        self.value = value + 1

def lost_update():
    counter = Counter()
    threads = [threading.Thread(target=counter.increment) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value == 2, "lost update"
'''


def _load(tmp_path: Path) -> ModuleType:
    folder = tmp_path / "plait" / "python" / "plait" / "project"  # as deep in "plait" as it gets
    folder.mkdir(parents=True)
    path = folder / "user_program.py"
    path.write_text(textwrap.dedent(PROGRAM))
    spec = importlib.util.spec_from_file_location("user_program_in_plait_folder", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_deadlock_report_names_the_locks_in_a_folder_named_plait(tmp_path: Path) -> None:
    module = _load(tmp_path)
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore()(module.deadlock).explore()
    assert isinstance(caught.value.__cause__, Deadlock)
    report = caught.value.report
    assert "(`first` in take())" in report and "(`second` in take())" in report


def test_failure_report_points_at_user_code_in_a_folder_named_plait(tmp_path: Path) -> None:
    module = _load(tmp_path)
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore()(module.lost_update).explore()
    report = caught.value.report
    # the failing line is the user's, in that folder
    assert 'Then AssertionError: lost update at ' in report
    assert 'user_program.py:33: assert counter.value == 2, "lost update"' in report
    assert "Counter.value" in report
