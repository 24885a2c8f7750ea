"""Small things a newcomer trips on (issue 10, part 7)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import plait
from plait import cli


def test_misspelled_option_gets_did_you_mean() -> None:
    with pytest.raises(plait.ConfigError, match=r"'max_execution' \(did you mean 'max_executions'\?\)"):
        plait.explore(max_execution=3)
    with pytest.raises(plait.ConfigError, match=r"'hang_timout' \(did you mean 'hang_timeout'\?\)"):
        plait.explore(hang_timout=3)(lambda: None)


def test_strategy_help_lists_dpor(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    strategy_help = text.split("--plait-strategy", 1)[1].split("--plait-", 1)[0]
    assert "auto (default), dpor, dfs, random, pct" in strategy_help


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"plait {plait.__version__}"


def test_plait_run_finds_the_projects_own_packages(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "__init__.py").write_text(textwrap.dedent('''
        import threading

        STOCK_LOCK = threading.Lock()  # a module-level lock, made at import
        stock = {"n": 0}

        def restock():
            with STOCK_LOCK:
                value = stock["n"]
                stock["n"] = value + 1
    '''))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shop.py").write_text(textwrap.dedent('''
        import threading
        import plait
        import shop

        @plait.explore(hang_timeout=3)
        def test_restock():
            shop.stock["n"] = 0
            threads = [threading.Thread(target=shop.restock) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert shop.stock["n"] == 2
    '''))
    assert cli.main(["run", str(tmp_path / "tests")]) == 0
    out = capsys.readouterr().out
    assert "test_shop.py::test_restock: passed" in out and "exhausted" in out


def test_race_warning_points_at_the_users_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_racy='''
        import threading, plait

        class Flag:
            up = False

        @plait.explore()
        def test_flag_set_and_read():
            flag = Flag()
            seen = []

            def write():
                flag.up = True

            def read():
                seen.append(flag.up)

            writer = threading.Thread(target=write)
            reader = threading.Thread(target=read)
            writer.start()
            reader.start()
            writer.join()
            reader.join()
    ''')
    # (in process, the outer session's "error" filter would turn the warning into a failure)
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "always::plait.races.RaceWarning")
    result.assert_outcomes(passed=1, warnings=1)
    out = result.stdout.str()
    assert "RaceWarning" in out
    result.stdout.fnmatch_lines(["*test_racy.py:6: RaceWarning*"])
    assert "runner.py" not in out and "races.py" not in out
