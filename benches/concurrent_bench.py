"""Time plait.call_concurrently against django-concurrent-test-helper on a small Django project.

    python benches/concurrent_bench.py            # creates benches/.venv-peers on first run

The peer is installed from PyPI into benches/.venv-peers (benches/peers.py), never into
plait's environment;
plait is imported from this checkout. Both run in the same process, on the same Django
project and SQLite test database, calling the same function. Reported per batch size:
time per call (batch wall time / calls) and the spread of start times (last call to enter
the function minus the first, as the function itself records it), with ratios peer / plait.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = "django-concurrent-test-helper"
DJANGO = "django"
SIZES = (5, 20)
REPEATS = {"plait threads": 20, "plait processes": 20, "peer": 3}


def venv_python() -> Path:
    sys.path.insert(0, str(ROOT / "benches"))
    from peers import peer_python  # the shared peers' venv, benches/.venv-peers

    return peer_python(DJANGO, PEER)


PROJECT = {
    "manage.py": """\
        #!{python}
        import os, sys
        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")
            from django.core.management import execute_from_command_line
            execute_from_command_line(sys.argv)
        """,
    "benchproj/__init__.py": "",
    "benchproj/settings.py": """\
        import os
        HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        SECRET_KEY = "bench"
        USE_TZ = True
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
        INSTALLED_APPS = ["django_concurrent_tests", "benchapp"]
        DATABASES = {{"default": {{
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(HERE, "bench.sqlite3"),
            "TEST": {{"NAME": os.path.join(HERE, "test_bench.sqlite3")}},
            "OPTIONS": {{"timeout": 30}},
        }}}}
        MANAGE_PY_PATH = os.path.join(HERE, "manage.py")
        """,
    "benchapp/__init__.py": "",
    "benchapp/models.py": """\
        from django.db import models

        class Ticket(models.Model):
            holder = models.CharField(max_length=50)
        """,
    "benchapp/work.py": """\
        import time
        from benchapp.models import Ticket

        def reserve(holder="bench"):
            # read then write: concurrent SQLite writers wait for each other's lock
            entered = time.time()
            count = Ticket.objects.count()
            Ticket.objects.create(holder=holder)
            return entered, count

        def count(holder="bench"):
            # read only: the time is mostly the helper's own overhead
            entered = time.time()
            return entered, Ticket.objects.filter(holder=holder).count()
        """,
}


def make_project(where: Path) -> None:
    for name, text in PROJECT.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).format(python=sys.executable))
    (where / "manage.py").chmod(0o755)


def measure(run, n: int, repeats: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(median seconds per call, median start spread in seconds) over `repeats` batches."""
    run(n)  # warm-up: starts plait's pool; the peer has nothing to warm
    per_call, spreads = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        entered = run(n)
        per_call.append((time.perf_counter() - start) / n)
        spreads.append(max(entered) - min(entered))
    return statistics.median(per_call), statistics.median(spreads)


def inner() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="plait-bench-"))
    make_project(workdir)
    sys.path.insert(0, str(workdir))
    sys.path.insert(0, str(ROOT / "python"))
    os.chdir(workdir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchproj.settings"
    import django

    django.setup()
    from django.test.runner import DiscoverRunner
    from django.test.utils import setup_test_environment

    setup_test_environment()
    DiscoverRunner(verbosity=0).setup_databases()
    from django_concurrent_tests.helpers import call_concurrently as peer_call

    import plait
    from plait.concurrent import call_concurrently

    def plait_run(backend, function):  # type: ignore[no-untyped-def]
        def run(n: int) -> list[float]:
            results = call_concurrently(n, function, holder="p", backend=backend)
            return [r.unwrap()[0] for r in results]

        return run

    def peer_run(function):  # type: ignore[no-untyped-def]
        def run(n: int) -> list[float]:
            values = peer_call(n, function, holder="q")
            bad = [v for v in values if not isinstance(v, tuple)]
            if bad:
                raise RuntimeError(f"the peer returned errors: {bad[:1]}")
            return [v[0] for v in values]

        return run

    import django_concurrent_tests.__about__ as about

    print(f"python {sys.version.split()[0]}, Django {django.get_version()}, plait "
          f"{plait.__version__}, django-concurrent-test-helper {about.__version__}, "
          f"{os.cpu_count()} CPUs, SQLite test database")  # fmt: skip
    print("command: python benches/concurrent_bench.py")
    for function in ("benchapp.work:count", "benchapp.work:reserve"):
        runners = {
            "plait threads": plait_run("threads", function),
            "plait processes": plait_run("processes", function),
            "peer": peer_run(function),
        }
        print(f"\n{function} ({'read only' if function.endswith('count') else 'read then write'})")
        table(runners)


def table(runners) -> None:  # type: ignore[no-untyped-def]
    print(f"{'calls':>5}  {'runner':<34} {'time/call':>10} {'start spread':>13}  (median of runs)")
    for n in SIZES:
        figures = {name: measure(run, n, REPEATS[name]) for name, run in runners.items()}
        for name, (per_call, spread) in figures.items():
            label = "django-concurrent-test-helper" if name == "peer" else name
            print(f"{n:>5}  {label:<34} {per_call * 1e3:>8.2f}ms {spread * 1e3:>11.2f}ms")
        peer_call_time, peer_spread = figures["peer"]
        for name in ("plait threads", "plait processes"):
            per_call, spread = figures[name]
            print(f"{n:>5}  ratio peer / {name:<21} {peer_call_time / per_call:>9.1f}x "
                  f"{peer_spread / max(spread, 1e-9):>12.1f}x")  # fmt: skip


if __name__ == "__main__":
    if "--inner" in sys.argv:
        inner()
    else:
        python = venv_python()
        sys.exit(subprocess.call([str(python), __file__, "--inner"]))
