"""Differential: one test at a time, a cooperative run does what plain pytest does.

The same suite of sync tests and fixtures (every scope, params, overrides, classes,
two packages, failures) runs once under pytest's own runner and once cooperatively
with max tasks 1; the logged sequence of setups, tests and teardowns must match.
"""

from __future__ import annotations

import pytest

CONFTEST = """
import os
import pytest

LOG = os.path.join(os.path.dirname(__file__), os.environ["DIFF_LOG"])

def event(text):
    with open(LOG, "a") as f:
        f.write(text + "\\n")

def pytest_collection_modifyitems(items):
    if os.environ.get("DIFF_COOPERATIVE"):
        for item in items:
            item.add_marker(pytest.mark.plait_cooperative)

@pytest.fixture(scope="session", autouse=True)
def sess():
    event("setup session")
    yield
    event("teardown session")

@pytest.fixture(scope="module", autouse=True)
def mod(request, sess):
    event(f"setup module {request.module.__name__}")
    yield
    event(f"teardown module {request.module.__name__}")

@pytest.fixture(params=["p", "q"])
def fparam(request, mod):
    event(f"setup fparam {request.param}")
    yield request.param
    event(f"teardown fparam {request.param}")

@pytest.fixture
def value():
    event("setup conftest value")
    yield "conftest"
    event("teardown conftest value")
"""

PACKAGE_CONFTEST = """
import pytest
from conftest import event

@pytest.fixture(scope="package", autouse=True)
def pkg(request):
    event("setup package {name}")
    yield
    event("teardown package {name}")
"""

MODULE = """
import pytest
from conftest import event

@pytest.fixture(scope="module", params=[1, 2])
def modparam(request):
    event(f"setup modparam {{request.param}}")
    yield request.param
    event(f"teardown modparam {{request.param}}")

@pytest.fixture
def value(value):
    event("setup {name} value")
    yield value + "+{name}"
    event("teardown {name} value")

def test_plain(modparam, value):
    event(f"test {name} plain {{modparam}} {{value}}")

def test_fparam(modparam, fparam):
    event(f"test {name} fparam {{modparam}} {{fparam}}")

class TestGroup:
    @pytest.fixture(scope="class", autouse=True)
    def grouped(self, modparam):
        event(f"setup class {name} {{modparam}}")
        yield
        event(f"teardown class {name} {{modparam}}")

    def test_one(self, modparam, value):
        event(f"test {name} one {{modparam}}")

    def test_two(self, modparam):
        event(f"test {name} two {{modparam}}")
        assert modparam != 2, "fails on purpose"

def test_broken_fixture(modparam, request):
    event(f"test {name} broken {{modparam}}")

@pytest.fixture
def broken(value):
    event("setup broken")
    raise RuntimeError("on purpose")

def test_uses_broken(modparam, broken):
    event("never")

@pytest.mark.skip(reason="on purpose")
def test_skipped(modparam):
    event("never")

@pytest.fixture(scope="module")
def finalized(request, modparam):
    event(f"setup finalized {{modparam}}")
    request.addfinalizer(lambda: event(f"finalizer {{modparam}}"))
    return modparam

@pytest.mark.usefixtures("value")
class TestMore:
    def test_dynamic(self, request, finalized):
        event(f"test {name} dynamic {{request.getfixturevalue('value')}} {{finalized}}")

    def test_skip_in_fixture(self, modparam, skipper):
        event("never")

@pytest.fixture
def skipper():
    event("setup skipper")
    yield
    event("never")

@pytest.fixture(autouse=True)
def maybe_skip(request):
    if "skip_in_fixture" in request.node.name:
        pytest.skip("skipped by a fixture")
"""


# One module-scoped parameter per module: when pytest's ordering interleaves two, it
# sets one of them up again each time its parameter comes back, where plait keeps each
# parameter's instance until its last user is done (docs/cooperative.md).
INDIRECT_MODULE = """
import pytest
from conftest import event

@pytest.fixture
def indirect(request):
    event(f"setup indirect {{request.param}}")
    yield request.param
    event(f"teardown indirect {{request.param}}")

@pytest.mark.parametrize("indirect", ["x", "y"], indirect=True, scope="module")
def test_indirect_module_scope(indirect):
    event(f"test {name} indirect {{indirect}}")

@pytest.mark.parametrize("indirect", ["z"], indirect=True)
def test_indirect_function_scope(indirect):
    event(f"test {name} indirect {{indirect}}")
"""


def make_suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    for name in ("alpha", "beta"):
        pytester.mkpydir(name)
        pytester.makepyfile(
            **{
                f"{name}/conftest": PACKAGE_CONFTEST.format(name=name),
                f"{name}/test_{name}": MODULE.format(name=name),
                f"{name}/test_{name}_indirect": INDIRECT_MODULE.format(name=name),
            }
        )


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, log: str, *args: str
) -> tuple[dict[str, int], list[str]]:
    monkeypatch.setenv("DIFF_LOG", log)
    outcomes = pytester.runpytest(*args).parseoutcomes()
    return outcomes, (pytester.path / log).read_text().splitlines()


def test_one_at_a_time_matches_pytest(pytester, ini, monkeypatch):
    make_suite(pytester)
    plain_outcomes, plain = run(pytester, monkeypatch, "plain.txt", "-p", "no:plait_cooperative")
    monkeypatch.setenv("DIFF_COOPERATIVE", "1")
    outcomes, cooperative = run(
        pytester, monkeypatch, "cooperative.txt", "--plait-cooperative-max-tasks=1"
    )
    assert (plain_outcomes["passed"], plain_outcomes["failed"]) == (32, 2)
    assert (plain_outcomes["errors"], plain_outcomes["skipped"]) == (4, 8)
    assert outcomes == plain_outcomes
    assert len(plain) > 100
    assert cooperative == plain


def test_all_at_once_sets_up_and_tears_down_the_same(pytester, ini, monkeypatch):
    """Concurrently the order changes, but not what is set up, run and torn down."""
    make_suite(pytester)
    plain_outcomes, plain = run(pytester, monkeypatch, "plain.txt", "-p", "no:plait_cooperative")
    monkeypatch.setenv("DIFF_COOPERATIVE", "1")
    outcomes, cooperative = run(
        pytester, monkeypatch, "cooperative.txt", "--plait-cooperative-max-tasks=0"
    )
    assert outcomes == plain_outcomes
    assert sorted(cooperative) == sorted(plain)
    assert cooperative[0] == "setup session" and cooperative[-1] == "teardown session"
