"""Per-test isolation while tests overlap: output, logs, tmp_path, monkeypatch, Lock."""

from __future__ import annotations

import os

import pytest

# Twenty tests that print, log and write files while interleaving with each other.
INTERLEAVED = """
import asyncio
import logging
import pytest

pytestmark = pytest.mark.plait_cooperative
log = logging.getLogger("app")

@pytest.mark.parametrize("i", range(20))
async def test_out(i, capsys, caplog, tmp_path):
    for step in range(3):
        print(f"out {i} {step}")
        log.warning("log %s %s", i, step)
        (tmp_path / f"f{step}").write_text(str(i))
        await asyncio.sleep(0.01)
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"out {i} {s}" for s in range(3)]
    assert [r.getMessage() for r in caplog.records] == [f"log {i} {s}" for s in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1", "f2"]
    assert {p.read_text() for p in tmp_path.iterdir()} == {str(i)}
"""


def test_capsys_caplog_tmp_path_are_per_test(pytester, ini):
    pytester.makepyfile(INTERLEAVED)
    pytester.runpytest().assert_outcomes(passed=20)


def test_capfd_and_binary_variants(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import sys
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.mark.parametrize("i", range(5))
async def test_capfd(i, capfd):
    print(f"fd {i}")
    sys.stderr.write(f"err {i}\\n")
    await asyncio.sleep(0.01)
    assert capfd.readouterr() == (f"fd {i}\\n", f"err {i}\\n")

async def test_binary(capsysbinary):
    print("bytes")
    await asyncio.sleep(0.01)
    assert capsysbinary.readouterr().out == b"bytes\\n"

async def test_disabled(capsys):
    with capsys.disabled():
        print("straight to the terminal")
    assert capsys.readouterr().out == ""
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*straight to the terminal*"])


def test_failure_report_shows_only_its_own_output(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import logging
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.mark.parametrize("i", range(4))
async def test_noisy(i):
    for step in range(3):
        print(f"noise-{i}-{step}")
        logging.getLogger("app").error("logged-%s", i)
        await asyncio.sleep(0.01)
    assert i != 2
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    section = out[out.index("Captured stdout call") :]
    assert "noise-2-0" in section and "noise-2-2" in section
    assert "noise-1" not in section and "noise-3" not in section
    assert "logged-2" in section and "logged-1" not in section


def test_s_flag_passes_output_through(pytester, ini):
    pytester.makepyfile(
        """
import pytest

@pytest.mark.plait_cooperative
async def test_print():
    print("visible with -s")
"""
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*visible with -s*"])


def test_monkeypatch_is_undone_per_test(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import os
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.mark.parametrize("i", range(3))
async def test_env(i, monkeypatch):
    monkeypatch.setenv(f"PLAIT_COOP_{i}", "1")
    await asyncio.sleep(0.01)
    assert os.environ[f"PLAIT_COOP_{i}"] == "1"
"""
    )
    pytester.runpytest().assert_outcomes(passed=3)
    # the run was in this process: its patches are gone
    assert not any(k.startswith("PLAIT_COOP_") for k in os.environ)


def test_overlapping_monkeypatch_of_a_global_warns(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.plait_cooperative
TARGET = "original"

@pytest.mark.parametrize("i", range(2))
async def test_patch(i, monkeypatch):
    monkeypatch.setattr(f"{__name__}.TARGET", f"patched {i}")
    await asyncio.sleep(0.05)
"""
    )
    result = pytester.runpytest("-W", "always::plait.cooperative.PlaitCooperativeWarning")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*PlaitCooperativeWarning*both monkeypatch*TARGET*Lock*"])


LOCKED = """
import asyncio
import pytest
from plait.cooperative import Lock

pytestmark = pytest.mark.plait_cooperative
TARGET = "original"
lock = Lock()
INSIDE = []
PEAK = [0]

@pytest.fixture
async def exclusive():
    async with lock{call}:
        yield

@pytest.mark.parametrize("i", range(5))
async def test_patch(exclusive, monkeypatch, i):
    INSIDE.append(i)
    PEAK[0] = max(PEAK[0], len(INSIDE))
    monkeypatch.setattr(f"{{__name__}}.TARGET", f"patched {{i}}")
    await asyncio.sleep(0.02)
    assert TARGET == f"patched {{i}}"
    INSIDE.remove(i)

def test_never_overlapped():
    assert PEAK[0] == 1
"""


@pytest.mark.parametrize("call", ["", "()"], ids=["lock", "lock-called"])
def test_lock_serializes_and_silences_the_warning(pytester, ini, call):
    pytester.makepyfile(LOCKED.format(call=call))
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=6)
