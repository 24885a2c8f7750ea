"""Shared test set-up.

pytester's in-process runs drop every module an inner session imported. Hypothesis's
pytest plugin imports Hypothesis in each inner session's summary, with assertion
rewriting, which costs seconds per run; importing it once here keeps it loaded.
"""

import hypothesis  # noqa: F401
import pytest


@pytest.fixture(autouse=True)
def _inner_sessions_choose_a_loop_scope(request: pytest.FixtureRequest,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester's inner sessions have no ini file of ours: without this, pytest-asyncio warns
    (PytestDeprecationWarning, asyncio_default_fixture_loop_scope unset) in every one."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS when it starts
        monkeypatch.setenv("PYTEST_ADDOPTS", "-o asyncio_default_fixture_loop_scope=function")
