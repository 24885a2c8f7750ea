"""Shared test set-up.

pytester's in-process runs drop every module an inner session imported. Hypothesis's
pytest plugin imports Hypothesis in each inner session's summary, with assertion
rewriting, which costs seconds per run; importing it once here keeps it loaded.
"""

import hypothesis  # noqa: F401
import pytest

# Plugins of the dev extra that a test turns on when it wants one (``-p randomly`` in the
# inner run's arguments unblocks it): installed for the cooperative plugin matrix, they
# would otherwise reorder, time out or instrument every inner session.
INNER_PLUGINS_OFF = "-p no:randomly -p no:pytest-retry -p no:timeout -p no:pytest_cov -p no:anyio"


@pytest.fixture(autouse=True)
def _inner_sessions_choose_a_loop_scope(request: pytest.FixtureRequest,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester's inner sessions have no ini file of ours: without this, pytest-asyncio warns
    (PytestDeprecationWarning, asyncio_default_fixture_loop_scope unset) in every one; and
    the matrix plugins stay off there unless a test asks for one."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts
        monkeypatch.setenv(
            "PYTEST_ADDOPTS", f"-o asyncio_default_fixture_loop_scope=function {INNER_PLUGINS_OFF}"
        )
