"""The HTML timeline (--plait-html): what the file holds, that user text is escaped, and
that the page works in a real headless chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import plait
from plait.errors import InterleavingFailure

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aio"))
from aio_programs import thread_and_task

THREADS = '''
import threading
import plait

class Counter:
    def __init__(self):
        self.value = 0

@plait.explore
def test_lost_update():
    c = Counter()
    def bump():
        v = c.value
        c.value = v + 1
    ts = [threading.Thread(target=bump, name=f"adder-{i}<i>") for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert c.value == 2, "<script>alert('owned')</script> lost an update"
'''

TOKEN = re.compile(r"--plait-replay=(plait1:[A-Za-z0-9_-]+)")


def _page(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str, str]:
    pytester.makepyfile(test_html_lost_update=THREADS)
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    match = re.search(r"plait: test_lost_update: HTML timeline: (\S+\.html)", out)
    assert match, out
    token = TOKEN.search(out)
    assert token, out
    return result, Path(match.group(1)).read_text(encoding="utf-8"), token.group(1)


def test_failing_thread_test_writes_an_escaped_html_timeline(pytester: pytest.Pytester) -> None:
    result, page, token = _page(pytester, "--plait-html=report")
    files = list((pytester.path / "report").glob("*.html"))
    assert len(files) == 1 and files[0].name.startswith("test_lost_update-")
    assert "test_lost_update" in page and token in page
    for name in ("MainThread", "adder-0&lt;i&gt;", "adder-1&lt;i&gt;"):
        assert name in page
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; lost an update" in page
    assert "<script>alert" not in page and "adder-0<i>" not in page
    assert page.count("<script>") == 1  # plait's own, inline
    assert "http://" not in page and "https://" not in page  # nothing fetched
    assert "&#x27;s update was lost." in page  # the explanation sentence
    assert "stopped at the first failure" in page  # the exploration's summary
    assert f"HTML timeline: {files[0]}" in result.stdout.str()  # in the report too


def test_html_directory_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nplait_html = from-ini\n")
    _page(pytester)
    assert len(list((pytester.path / "from-ini").glob("test_lost_update-*.html"))) == 1


def test_html_on_the_decorator_for_tasks_and_threads(tmp_path: Path) -> None:
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(html=str(tmp_path))(thread_and_task()).explore()
    (path,) = caught.value.result.html
    page = Path(path).read_text(encoding="utf-8")
    assert "executor-1 (partial)" in page and "Task-3 (bump)" in page
    assert 'class="step task' in page and 'class="step thread' in page
    assert "Conflicting accesses" in page and 'class="step thread conflict"' in page


def test_html_of_a_race_warning_when_asked(tmp_path: Path) -> None:
    import threading

    class Box:
        value = 0

    def body() -> None:
        box = Box()

        def put() -> None:
            box.value = 1

        thread = threading.Thread(target=put, name="putter")
        thread.start()
        box.value = 2
        thread.join()

    with pytest.warns(plait.RaceWarning):
        result = plait.explore(html=str(tmp_path), html_races=True)(body).explore()
    (path,) = result.html
    page = Path(path).read_text(encoding="utf-8")
    assert "RaceWarning" in page and "putter" in page and "data race" in page


def test_bad_html_option_is_a_clear_error(tmp_path: Path) -> None:
    file = tmp_path / "a-file"
    file.write_text("")
    with pytest.raises(plait.ConfigError, match="html must be a directory"):
        plait.explore(html=str(file))(thread_and_task())


CHROMIUM = os.environ.get("PLAIT_CHROMIUM", "/usr/bin/chromium")


def test_page_works_in_headless_chromium(pytester: pytest.Pytester) -> None:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"no chromium at {CHROMIUM}: scripts/ensure-browser installs Debian's")
    from playwright.sync_api import sync_playwright

    _result, _page_text, token = _page(pytester, "--plait-html=report")
    (path,) = (pytester.path / "report").glob("*.html")
    problems: list[str] = []
    with sync_playwright() as driver, tempfile.TemporaryDirectory() as profile:
        browser = driver.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                 "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: problems.append(f"fetched {r.url}")
                    if not r.url.startswith("file://") else None)
            page.goto(path.as_uri())
            lanes = page.locator("th.lane").all_inner_texts()
            assert [lane.split(" (")[0] for lane in lanes] == ["MainThread", "adder-0<i>", "adder-1<i>"]
            steps = page.locator(".step")
            assert steps.count() >= 10
            assert page.locator("#token").inner_text() == token
            # clicking a step shows its source (and only that step's detail)
            write = page.locator(".step", has_text="writes Counter.value").first
            write.click()
            number = write.get_attribute("data-step")
            detail = page.locator(f'.detail[data-step="{number}"]')
            assert detail.is_visible()
            assert "c.value = v + 1" in detail.inner_text()
            assert page.locator(".detail:visible").count() == 1
            # a conflict link jumps to the other step
            link = detail.locator("a.steplink").first
            other = link.get_attribute("data-step")
            link.click()
            assert page.locator(f'.detail[data-step="{other}"]').is_visible()
            assert page.locator(f'.step[data-step="{other}"]').get_attribute("class").endswith("selected")
            page.locator("#copy").click()
            # the escaped assertion message is text on the page, not markup
            assert "<script>alert('owned')</script> lost an update" in page.locator(".error").inner_text()
            assert page.evaluate("document.querySelectorAll('script').length") == 1
        finally:
            browser.close()
    assert problems == []
