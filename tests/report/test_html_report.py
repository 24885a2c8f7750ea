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

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benches"))
from html_bench import program  # the two-thread counter the size bench measures

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
            # its conflict's other accesses are highlighted: the steps and the conflict's entry
            conflicts = page.locator(f'.step[data-step="{number}"]').get_attribute("data-conflicts")
            assert conflicts
            related = page.locator(".step.related")
            assert related.count() >= 3  # MainThread's read and both adders' accesses
            assert page.locator(".step.conflict:not(.related)").count() == 0
            assert page.locator(f'li.related[data-conflict="{conflicts.split()[0]}"]').count() == 1
            # the conflict is rendered once and named by a link in the detail
            conflict_link = detail.locator("a.conflictlink").first
            target = conflict_link.get_attribute("href")
            assert target and page.locator(target).count() == 1
            assert page.locator(f"{target} a.steplink").count() >= 3
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


def _report(directory: Path, rounds: int) -> tuple[int, str]:
    """(steps, page) of the HTML report of the bench's two-thread counter's lost update."""
    with pytest.raises(InterleavingFailure) as caught:
        plait.explore(html=str(directory), shrink=False)(program(rounds)).explore()
    (path,) = caught.value.result.html[-1:]
    page = Path(path).read_text(encoding="utf-8")
    match = re.search(r"Steps, in the order they ran: (\d+) steps", page)
    assert match, page[:2000]
    return int(match.group(1)), page


BYTES_PER_STEP = 1600  # about 1.07 KB/step today; the quadratic page was 3.8 KB/step at 216 steps


def test_report_size_grows_linearly_with_the_steps(tmp_path: Path) -> None:
    small_steps, small = _report(tmp_path / "small", 5)
    large_steps, large = _report(tmp_path / "large", 36)
    assert 40 <= small_steps <= 80 and large_steps >= 280, (small_steps, large_steps)
    small_rate = len(small.encode()) / small_steps
    large_rate = len(large.encode()) / large_steps
    assert large_rate < BYTES_PER_STEP, f"{large_rate:.0f} bytes/step at {large_steps} steps"
    # near linear: six times the steps cost at most 1.25 times the bytes per step
    assert large_rate < 1.25 * small_rate, (small_rate, large_rate)
    # one conflict (Counter.value), rendered once: every access linked to its step there, and
    # each step's detail links at most the nearest other actor's access before and after it
    assert large.count('<li id="conflict-0" data-conflict="0">') == 1
    assert 'id="conflict-1"' not in large
    details = re.findall(r'<div class="detail" data-step="(\d+)" hidden>(.*?)</div>', large, re.S)
    assert len(details) == large_steps
    conflicting = 0
    for _number, body in details:
        for paragraph in re.findall(r"<p>Conflicts on (.*?)</p>", body):
            conflicting += 1
            assert 'href="#conflict-0"' in paragraph
            assert paragraph.count('class="steplink"') <= 2
    assert conflicting == large.count('data-conflicts="0"') >= 2 * 36


def _timeline(actors: list[int]):  # type: ignore[no-untyped-def]
    from plait.timeline import Conflict, Entry, Timeline, Touch

    entries = [Entry(n, actor, f"a{actor}", "thread", "writes x", None, 0.0)
               for n, actor in enumerate(actors, 1)]
    # every step touches x, some twice (a read then a write in one step), one with no step
    touches = [Touch(f"a{e.actor}", bool(e.number % 2), None, e.number)
               for e in entries for _ in range(1 + e.number % 3 // 2)]
    touches.insert(len(touches) // 2, Touch("outside", True, None, None))
    return Timeline(entries, [], [Conflict("x", "", touches)])


def test_conflict_neighbours_agree_with_a_brute_force_scan() -> None:
    import random

    from plait.html_report import _neighbours

    chooser = random.Random(14)
    cases = [[], [0], [0, 0, 0], [0, 1], [0, 0, 1, 1, 0], [0, 1, 2, 0, 1, 2]]
    cases += [[chooser.randrange(3) for _ in range(chooser.randrange(1, 30))] for _ in range(200)]
    for actors in cases:
        timeline = _timeline(actors)
        found = _neighbours(timeline)
        for number, actor in enumerate(actors, 1):
            before = [n for n, a in enumerate(actors[:number - 1], 1) if a != actor]
            after = [n for n, a in enumerate(actors[number:], number + 1) if a != actor]
            expected = (before[-1] if before else None, after[0] if after else None)
            assert found[(0, number)] == expected, (actors, number)
        assert len(found) == len(actors)
