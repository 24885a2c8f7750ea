"""Shared test set-up.

pytester's in-process runs drop every module an inner session imported. Hypothesis's
pytest plugin imports Hypothesis in each inner session's summary, with assertion
rewriting, which costs seconds per run; importing it once here keeps it loaded.
"""

import hypothesis  # noqa: F401
