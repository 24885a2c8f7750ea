"""Runs django_suite/ in a pytest subprocess configured as a Django project's CI would be.

Django is configured for that process only (DJANGO_SETTINGS_MODULE=djangoapp.settings, with
pytest-django), so the rest of this session never sees a configured Django.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EXPECTED_AT_LEAST = 20  # tests in django_suite/: a drop means some were lost or skipped


def test_django_suite_on_sqlite_and_postgres() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_TEST_")}
    env.update(
        PLAIT_DJANGO_SUITE="1",
        DJANGO_SETTINGS_MODULE="djangoapp.settings",
        PYTHONPATH=os.pathsep.join([str(HERE), str(ROOT / "python"), env.get("PYTHONPATH", "")]),
    )
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs"]
    proc = subprocess.run(
        [*command, str(HERE / "django_suite")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    summary = re.search(r"(\d+) passed", output)
    assert proc.returncode == 0, f"the Django suite failed:\n{output}"
    assert " skipped" not in output, f"no Django test may be skipped:\n{output}"
    assert summary and int(summary.group(1)) >= EXPECTED_AT_LEAST, output
