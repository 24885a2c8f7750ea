"""Fixtures in cooperative runs: every kind and scope, set up once, torn down in order."""

from __future__ import annotations

import pytest

# A conftest that logs fixture events to a file, so the order can be checked after
# the run whatever the capture settings.
EVENTS_CONFTEST = """
import asyncio
import os
import pytest

LOG = os.path.join(os.path.dirname(__file__), "events.txt")

def event(text):
    with open(LOG, "a") as f:
        f.write(text + "\\n")

@pytest.fixture(scope="session")
def sess():
    event("setup session")
    yield "session"
    event("teardown session")

@pytest.fixture(scope="package")
async def pkg(sess):
    event("setup package")
    await asyncio.sleep(0.02)  # the other tests wait for it meanwhile
    yield "package"
    await asyncio.sleep(0)
    event("teardown package")

@pytest.fixture(scope="module")
async def mod(pkg):
    event("setup module")
    await asyncio.sleep(0.02)
    yield "module"
    event("teardown module")

@pytest.fixture(scope="class")
def cls_fix(mod):
    event("setup class")
    yield "class"
    event("teardown class")

@pytest.fixture
async def func(cls_fix):
    event("setup function")
    await asyncio.sleep(0.01)
    yield "function"
    event("teardown function")
"""


def events(pytester: pytest.Pytester) -> list[str]:
    return (pytester.path / "events.txt").read_text().splitlines()


TWO_CLASSES = """
import asyncio
import pytest

pytestmark = pytest.mark.plait_cooperative

class TestOne:
    async def test_a(self, func):
        event("test one.a")
        await asyncio.sleep(0.05)

    async def test_b(self, func):
        event("test one.b")
        await asyncio.sleep(0.05)

class TestTwo:
    async def test_c(self, func):
        event("test two.c")
        await asyncio.sleep(0.05)
"""


def test_every_scope_set_up_once_and_torn_down_after_last_user(pytester, ini):
    pytester.makeconftest(EVENTS_CONFTEST)
    pytester.makepyfile(test_scopes="from conftest import event\n" + TWO_CLASSES)
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    log = events(pytester)
    for scope in ("session", "package", "module"):
        assert log.count(f"setup {scope}") == 1, log
        assert log.count(f"teardown {scope}") == 1, log
    assert log.count("setup class") == 2  # one per class
    assert log.count("setup function") == 3
    # wider scopes torn down after narrower ones, all after the last test
    last_test = max(i for i, e in enumerate(log) if e.startswith("test"))
    order = [log.index(f"teardown {s}") for s in ("module", "package", "session")]
    assert last_test < order[0] < order[1] < order[2]


def test_lifetimes_with_max_tasks_one_match_pytest(pytester, ini):
    """One task at a time: exactly the sequence plain pytest produces."""
    pytester.makeconftest(EVENTS_CONFTEST)
    pytester.makepyfile(test_scopes="from conftest import event\n" + TWO_CLASSES)
    result = pytester.runpytest("--plait-cooperative-max-tasks=1")
    result.assert_outcomes(passed=3)
    assert events(pytester) == [
        "setup session",
        "setup package",
        "setup module",
        "setup class",
        "setup function",
        "test one.a",
        "teardown function",
        "setup function",
        "test one.b",
        "teardown function",
        "teardown class",
        "setup class",
        "setup function",
        "test two.c",
        "teardown function",
        "teardown class",
        "teardown module",
        "teardown package",
        "teardown session",
    ]


def test_package_scope_per_package(pytester, ini):
    pytester.makeconftest(EVENTS_CONFTEST)
    for pkg in ("pa", "pb"):
        pytester.mkpydir(pkg)
        pytester.makepyfile(
            **{
                f"{pkg}/conftest": f"""
import pytest
from conftest import event

@pytest.fixture(scope="package")
async def pkgfix(sess):
    event("setup package {pkg}")
    yield
    event("teardown package {pkg}")
"""
            }
        )
        for mod in ("one", "two"):
            pytester.makepyfile(
                **{
                    f"{pkg}/test_{pkg}_{mod}": f"""
import asyncio
import pytest
from conftest import event

@pytest.mark.plait_cooperative
async def test_{mod}(pkgfix):
    event("test {pkg} {mod}")
    await asyncio.sleep(0.05)
"""
                }
            )
    result = pytester.runpytest()
    result.assert_outcomes(passed=4)
    log = events(pytester)
    for pkg in ("pa", "pb"):
        assert log.count(f"setup package {pkg}") == 1
        assert log.count(f"teardown package {pkg}") == 1
        tests = [i for i, e in enumerate(log) if e.startswith(f"test {pkg}")]
        assert log.index(f"setup package {pkg}") < min(tests)
        assert log.index(f"teardown package {pkg}") > max(tests)
    assert log.count("setup session") == 1
    assert log[-1] == "teardown session"


def test_fixture_kinds_params_indirect_autouse(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.plait_cooperative
SEEN = []

@pytest.fixture(autouse=True)
async def auto():
    SEEN.append("auto")
    yield

@pytest.fixture
def plain():
    return 1

@pytest.fixture
def gen():
    yield 2

@pytest.fixture
async def coro():
    await asyncio.sleep(0)
    return 3

@pytest.fixture
async def agen():
    yield 4

@pytest.fixture(params=[10, 20])
async def param(request):
    return request.param

@pytest.fixture
def doubled(request):
    return request.param * 2

@pytest.fixture(scope="module", params=["x", "y"])
def modparam(request):
    return request.param

async def test_kinds(plain, gen, coro, agen):
    assert (plain, gen, coro, agen) == (1, 2, 3, 4)
    assert SEEN

async def test_params(param):
    assert param in (10, 20)

@pytest.mark.parametrize("doubled", [1, 5], indirect=True)
async def test_indirect(doubled):
    assert doubled in (2, 10)

@pytest.mark.parametrize("direct", ["a", "b"])
def test_direct_sync(direct, coro):
    assert direct in "ab" and coro == 3

async def test_module_params(modparam, request):
    assert modparam in ("x", "y")
    assert request.getfixturevalue("plain") == 1
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=9)


def test_fixture_override_and_request_super(pytester, ini):
    pytester.makeconftest(
        """
import pytest

@pytest.fixture
async def value():
    return "conftest"
"""
    )
    pytester.makepyfile(
        """
import pytest

@pytest.fixture
async def value(value):
    return value + "+module"

@pytest.mark.plait_cooperative
async def test_override(value):
    assert value == "conftest+module"
"""
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_fixture_error_is_an_error_and_the_rest_is_torn_down(pytester, ini):
    pytester.makeconftest(EVENTS_CONFTEST)
    pytester.makepyfile(
        """
import asyncio
import pytest
from conftest import event

pytestmark = pytest.mark.plait_cooperative

@pytest.fixture
async def broken(func):
    event("setup broken")
    raise RuntimeError("fixture exploded")

@pytest.fixture
def bad_teardown():
    yield
    event("teardown bad")
    raise ValueError("teardown exploded")

async def test_uses_broken(broken):
    event("never")

async def test_bad_teardown(bad_teardown, func):
    await asyncio.sleep(0.01)

async def test_fine(func):
    await asyncio.sleep(0.01)
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_uses_broken*",
            "*RuntimeError: fixture exploded*",
            "*ERROR at teardown of test_bad_teardown*",
            "*ValueError: teardown exploded*",
        ]
    )
    log = events(pytester)
    assert "never" not in log
    assert log.count("setup function") == log.count("teardown function") == 3
    for scope in ("class", "module", "package", "session"):
        assert log.count(f"setup {scope}") == log.count(f"teardown {scope}")
    # our frames are hidden: the traceback starts at the user's fixture
    assert "_fixtures.py" not in result.stdout.str()


def test_wider_fixture_error_is_cached_for_the_scope(pytester, ini):
    pytester.makepyfile(
        """
import pytest
CALLS = []

@pytest.fixture(scope="module")
async def broken():
    CALLS.append(1)
    raise RuntimeError("once")

@pytest.mark.plait_cooperative
@pytest.mark.parametrize("i", range(3))
async def test_x(broken, i):
    pass

def test_calls():
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=3)


def test_skip_in_fixture_and_xfail(pytester, ini):
    pytester.makepyfile(
        """
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.fixture
async def skipper():
    pytest.skip("no backend")

async def test_skipped(skipper):
    pass

@pytest.mark.skipif(True, reason="never here")
async def test_skipif():
    pass

@pytest.mark.xfail(reason="known", strict=True)
async def test_xfail():
    assert False

@pytest.mark.xfail(run=False)
async def test_not_run():
    raise SystemExit("must not run")
"""
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=2, xfailed=2)
    result.stdout.fnmatch_lines(["*test_skip_in_fixture_and_xfail.py:9: no backend*"])


def test_request_addfinalizer_and_node_finalizer(pytester, ini):
    pytester.makeconftest(EVENTS_CONFTEST)
    pytester.makepyfile(
        """
import pytest
from conftest import event

@pytest.fixture(scope="module")
def modfin(request):
    request.addfinalizer(lambda: event("module finalizer"))
    request.node.addfinalizer(lambda: event("node finalizer"))

@pytest.mark.plait_cooperative
async def test_a(modfin, request):
    request.addfinalizer(lambda: event("test finalizer"))

@pytest.mark.plait_cooperative
async def test_b(modfin):
    pass
"""
    )
    pytester.runpytest("--plait-cooperative-max-tasks=1").assert_outcomes(passed=2)
    assert events(pytester) == ["test finalizer", "module finalizer", "node finalizer"]


def test_xunit_setup_and_teardown_functions(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import os
import pytest

pytestmark = pytest.mark.plait_cooperative
EVENTS = []

def setup_module(module):
    EVENTS.append("setup_module")

def teardown_module(module):
    EVENTS.append("teardown_module")
    with open(os.path.join(os.path.dirname(__file__), "events.txt"), "w") as f:
        f.write("\\n".join(EVENTS))

class TestX:
    @classmethod
    def setup_class(cls):
        EVENTS.append("setup_class")

    @classmethod
    def teardown_class(cls):
        EVENTS.append("teardown_class")

    def setup_method(self, method):
        EVENTS.append("setup " + method.__name__)

    def teardown_method(self, method):
        EVENTS.append("teardown " + method.__name__)

    async def test_a(self):
        await asyncio.sleep(0.01)

    async def test_b(self):
        await asyncio.sleep(0.01)
"""
    )
    pytester.runpytest().assert_outcomes(passed=2)
    log = events(pytester)
    assert log[:2] == ["setup_module", "setup_class"]
    assert log[-2:] == ["teardown_class", "teardown_module"]
    assert sorted(log[2:-2]) == [
        "setup test_a",
        "setup test_b",
        "teardown test_a",
        "teardown test_b",
    ]


def test_clear_errors_for_misused_fixtures(pytester, ini):
    pytester.makepyfile(
        """
import asyncio
import pytest

pytestmark = pytest.mark.plait_cooperative

@pytest.fixture
async def waits():
    await asyncio.sleep(0.01)
    return 1

async def test_dynamic_async(request):
    request.getfixturevalue("waits")

@pytest.fixture(scope="module")
def wide(tmp_path):
    return tmp_path

async def test_scope_mismatch(wide):
    pass

async def test_unknown(no_such_fixture):
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1, errors=2)
    for line in (
        "*getfixturevalue('waits') would have to wait for an async fixture*",
        "*ScopeMismatch*function scoped fixture tmp_path*module scoped*",
        "*fixture 'no_such_fixture' not found*",
    ):
        result.stdout.fnmatch_lines([line])
