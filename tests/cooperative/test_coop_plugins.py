"""The plugin matrix: a cooperative suite under each plugin people have installed.

Each row runs the same suite (a flaky test, a failing one, one whose fixture raises, one
that fails while it holds a lock ten others need, and a plain one) with one plugin on,
once cooperatively and once sequentially through pytest-asyncio (the plugin then sees
pytest's own protocol), and compares the outcomes: no INTERNALERROR, no hang, the same
result. The plugins are off in inner runs unless a row turns its own on (see
tests/conftest.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

SUITE = """
import asyncio
import pytest
import pytest_asyncio
from plait.cooperative import Lock

lock = Lock()
ATTEMPTS = []


@pytest_asyncio.fixture
async def locked():
    async with lock:
        yield


@pytest_asyncio.fixture
async def broken():
    await asyncio.sleep(0)
    raise RuntimeError("the fixture broke")


@pytest.mark.{marker}
{flaky}
async def test_flaky():
    ATTEMPTS.append(1)
    await asyncio.sleep(0.01)
    assert len(ATTEMPTS) > 1, "fails the first time"


@pytest.mark.{marker}
async def test_fails():
    await asyncio.sleep(0.01)
    assert 1 == 2


@pytest.mark.{marker}
async def test_fixture_raises(broken):
    pass


@pytest.mark.{marker}
async def test_dies_holding_the_lock(locked):
    await asyncio.sleep(0.05)
    raise RuntimeError("dies holding the lock")


@pytest.mark.{marker}
@pytest.mark.parametrize("i", range(10))
async def test_needs_the_lock(i, locked):
    await asyncio.sleep(0.01)


@pytest.mark.{marker}
async def test_plain():
    await asyncio.sleep(0.01)
{extra}
"""

RERUNS = "@pytest.mark.flaky(reruns=2)"
OUTCOMES = {"passed": 12, "failed": 2, "errors": 1}


def suite(pytester: pytest.Pytester, cooperative: bool, flaky: str = RERUNS, extra: str = "") -> None:
    marker = "plait_cooperative" if cooperative else "asyncio"
    pytester.makepyfile(test_suite=SUITE.format(marker=marker, flaky=flaky, extra=extra.format(marker=marker)))


def outcomes(result: pytest.RunResult) -> dict[str, int]:
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    found = result.parseoutcomes()
    found.pop("warnings", None)
    found.pop("warning", None)
    if "error" in found:
        found["errors"] = found.pop("error")
    return found


def both(
    pytester: pytest.Pytester,
    *args: str,
    flaky: str = RERUNS,
    extra: str = "",
    subprocess: bool = False,
) -> tuple[dict[str, int], pytest.RunResult]:
    """The cooperative run's outcomes (checked against the sequential run's) and its result."""
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    suite(pytester, cooperative=False, flaky=flaky, extra=extra)
    sequential = outcomes(run("-p", "no:cacheprovider", *args))
    suite(pytester, cooperative=True, flaky=flaky, extra=extra)
    result = run("-p", "no:cacheprovider", *args)
    cooperative = outcomes(result)
    assert cooperative == sequential
    return cooperative, result


def test_pytest_retry(pytester, ini):
    found, result = both(
        pytester, "-p", "pytest-retry", "-p", "no:rerunfailures", flaky="@pytest.mark.flaky(retries=2)"
    )
    assert found == {**OUTCOMES, "retried": 1}
    result.stdout.fnmatch_lines(
        ["*test_flaky failed on attempt 1! Retrying!*", "*test_flaky passed on attempt 2!*"]
    )


def test_pytest_retry_gives_up_after_its_retries(pytester, ini):
    extra = """
ALWAYS = []

@pytest.mark.{marker}
@pytest.mark.flaky(retries=2)
async def test_always_fails():
    ALWAYS.append(1)
    assert False, f"attempt {{len(ALWAYS)}}"
"""
    found, result = both(
        pytester,
        "-p",
        "pytest-retry",
        "-p",
        "no:rerunfailures",
        flaky="@pytest.mark.flaky(retries=2)",
        extra=extra,
    )
    assert found == {**OUTCOMES, "failed": 3, "retried": 2}
    result.stdout.fnmatch_lines(["*test_always_fails failed after 3 attempts!*", "*attempt 3*"])


def test_pytest_rerunfailures_marker(pytester, ini):
    found, _ = both(pytester)
    assert found == {**OUTCOMES, "rerun": 1}


def test_pytest_rerunfailures_option(pytester, ini):
    found, _ = both(pytester, "--reruns", "1", flaky="")
    # the flaky test passes on its rerun; the failing, dying and broken ones rerun once
    assert found == {**OUTCOMES, "rerun": 4}


HANGS = """
@pytest.mark.{marker}
@pytest.mark.timeout(0.5)
async def test_hangs_holding_the_lock(locked):
    await asyncio.Event().wait()
"""


def test_pytest_timeout(pytester, ini):
    found, result = both(pytester, "-p", "timeout", "--timeout=60", extra=HANGS)
    assert found == {**OUTCOMES, "failed": 3, "rerun": 1}
    result.stdout.fnmatch_lines(
        [
            "*Timeout: the test took longer than the cooperative timeout of 0.5s (pytest-timeout*",
            "*It was suspended at (most recent call last):*",
            "*in test_hangs_holding_the_lock*",
            "*await asyncio.Event().wait()*",
        ]
    )


def test_pytest_xdist(pytester, ini):
    found, _ = both(pytester, "-n", "2", "-p", "no:hypothesispytest", subprocess=True)
    assert found == {**OUTCOMES, "rerun": 1}


def test_pytest_cov(pytester, ini):
    found, result = both(pytester, "-p", "pytest_cov", "--cov", "--cov-report=term", subprocess=True)
    assert found == {**OUTCOMES, "rerun": 1}
    result.stdout.fnmatch_lines(["*test_suite.py*", "TOTAL*"])


def test_pytest_randomly(pytester, ini):
    found, result = both(pytester, "-p", "randomly", "-p", "randomly", "--randomly-seed=1234")
    assert found == {**OUTCOMES, "rerun": 1}
    result.stdout.fnmatch_lines(["*Using --randomly-seed=1234*"])


def _cases(path) -> list[tuple[str, str]]:
    """(name, result) of each testcase in a JUnit XML file, sorted."""
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        results = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        cases.append((case.get("name") or "", ",".join(results) or "passed"))
    return sorted(cases)


def test_junitxml(pytester, ini):
    suite(pytester, cooperative=False)
    pytester.runpytest("-p", "no:cacheprovider", "--junitxml=sequential.xml")
    found, _ = both(pytester, "--junitxml=report.xml")
    assert found == {**OUTCOMES, "rerun": 1}
    cases = _cases(pytester.path / "report.xml")
    assert cases == _cases(pytester.path / "sequential.xml")
    assert ("test_dies_holding_the_lock", "failure") in cases
    assert ("test_fixture_raises", "error") in cases
    assert cases.count(("test_flaky", "passed")) == 2  # the rerun, then the pass, as pytest writes it
    suite_node = next(ET.parse(pytester.path / "report.xml").getroot().iter("testsuite"))
    assert (suite_node.get("tests"), suite_node.get("failures"), suite_node.get("errors")) == ("15", "2", "1")


ASYNCIO_OWN = """
@pytest.mark.asyncio
async def test_pytest_asyncio_runs_this():
    await asyncio.sleep(0)


async def test_unmarked():
    await asyncio.sleep(0)
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_asyncio(pytester, ini, mode):
    found, _ = both(pytester, "-o", f"asyncio_mode={mode}", extra=ASYNCIO_OWN)
    if mode == "strict":  # nobody runs the unmarked async test: pytest fails it
        assert found == {**OUTCOMES, "passed": 13, "failed": 3, "rerun": 1}
    else:
        assert found == {**OUTCOMES, "passed": 14, "rerun": 1}


ANYIO = """
@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_anyio_runs_this():
    import anyio
    await anyio.sleep(0)
"""


def test_anyio(pytester, ini):
    found, _ = both(pytester, "-p", "anyio", extra=ANYIO)
    assert found == {**OUTCOMES, "passed": 13, "rerun": 1}
