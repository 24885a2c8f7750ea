"""The HTML timeline of a failing execution: one self-contained file (inline CSS and script,
nothing fetched), one lane per actor, the steps in the order they ran.

The page grows linearly with the execution: each conflict (the accesses to one location) is
rendered once, in the "Conflicting accesses" list with the id ``conflict-N``, listing each of
its accesses with a link to the step that made it. A step's detail names its conflicts by
link and links only the nearest access by another actor before and after its own, and its
lane cell carries ``data-conflicts="N ..."``; selecting a step, the script highlights every
step and list entry of its conflicts by those ids. A step never lists all the steps it
conflicts with (that made the page quadratic: 1.8 MiB for 336 steps).

Everything that comes from the program under test (assertion messages, reprs, thread and
task names, source lines, SQL) goes through ``html.escape``; the page's script never builds
markup from text, it only shows and hides what the server side rendered.
"""

from __future__ import annotations

import hashlib
import html
import linecache
import os
import re
from typing import Any

from plait._paths import short_path
from plait.timeline import Entry, Timeline, at, build

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em} h2{font-size:1.05em;margin:1.2em 0 .4em}
code,pre,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.story{background:#fff3cd;border-left:4px solid #e0a800;padding:.5em .8em;margin:.6em 0}
.error{background:#f8d7da;border-left:4px solid #c82333;padding:.5em .8em;white-space:pre-wrap}
.summary{color:#555}
.token{display:flex;gap:.5em;align-items:center;margin:.6em 0}
.token code{background:#eee;padding:.2em .4em;border-radius:3px;word-break:break-all}
button{cursor:pointer}
.wrap{display:flex;gap:1em;align-items:flex-start}
table.lanes{border-collapse:collapse;background:#fff}
table.lanes th{position:sticky;top:0;background:#e9ecef;padding:.3em .6em;text-align:left;
  max-width:16em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.lanes td{border-top:1px solid #eee;padding:.15em .4em;vertical-align:top}
td.n,td.t{color:#888;text-align:right}
.step{display:block;max-width:22em;padding:.2em .4em;border-radius:4px;background:#e7f1ff;
  border:1px solid #b6d4fe;cursor:pointer;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.step.task{background:#e6f4ea;border-color:#a3cfbb}
.step.conflict{background:#ffe5d0;border-color:#fd7e14;font-weight:600}
.step.related{outline:2px dashed #fd7e14}
.step.selected{outline:2px solid #0d6efd}
ul.conflicts li.related{background:#fff3cd}
.detail{position:sticky;top:1em;background:#fff;border:1px solid #ccc;border-radius:6px;
  padding:.6em .9em;min-width:24em;max-width:48em}
.detail pre{background:#f6f8fa;padding:.4em;overflow:auto}
.detail .hl{background:#fff3cd}
ul.conflicts li{margin:.3em 0}
.note{color:#666;font-style:italic}
"""

_SCRIPT = """
(function(){
  function mark(selector, name){
    document.querySelectorAll('.'+name).forEach(function(e){e.classList.remove(name);});
    if (selector) document.querySelectorAll(selector).forEach(function(e){e.classList.add(name);});
  }
  function related(ids){
    var selectors = [];
    ids.forEach(function(c){
      selectors.push('.step[data-conflicts~="'+c+'"]', 'li[data-conflict="'+c+'"]');});
    mark(selectors.join(','), 'related');
  }
  function select(n){
    var step = document.querySelector('.step[data-step="'+n+'"]');
    related(step && step.dataset.conflicts ? step.dataset.conflicts.split(' ') : []);
    mark('.step[data-step="'+n+'"]', 'selected');
    if (step) step.scrollIntoView({block:'nearest'});
    document.querySelectorAll('.detail').forEach(function(d){d.hidden = d.dataset.step !== n;});
  }
  document.querySelectorAll('.step').forEach(function(el){
    el.addEventListener('click', function(){ select(el.dataset.step); });
  });
  document.querySelectorAll('a.steplink').forEach(function(a){
    a.addEventListener('click', function(ev){ ev.preventDefault(); select(a.dataset.step); });
  });
  document.querySelectorAll('a.conflictlink').forEach(function(a){
    a.addEventListener('click', function(){ related([a.dataset.conflict]); });
  });
  var button = document.getElementById('copy');
  if (button) button.addEventListener('click', function(){
    var text = document.getElementById('token').textContent;
    function fallback(){
      var range = document.createRange();
      range.selectNodeContents(document.getElementById('token'));
      var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
      try { document.execCommand('copy'); } catch (e) {}
      button.textContent = 'selected: press Ctrl+C';
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function(){ button.textContent = 'copied'; }, fallback);
    } else { fallback(); }
  });
  var first = document.querySelector('.step.conflict') || document.querySelector('.step');
  if (first) select(first.dataset.step);
})();
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def file_name(name: str, key: str | None) -> str:
    """A file name for the test: readable, and unique per test id."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:100] or "test"
    digest = hashlib.sha1((key or name).encode()).hexdigest()[:8]
    return f"{readable}-{digest}.html"


def _source(where: Any, context: int = 2) -> str:
    if where is None:
        return ""
    path, line = where[0], where[1]
    rows = []
    for number in range(max(1, line - context), line + context + 1):
        text = linecache.getline(path, number)
        if not text and number > line:
            break
        body = f"{number:>5}  {_e(text.rstrip())}"
        rows.append(f'<span class="hl">{body}</span>' if number == line else body)
    return "<pre>" + "\n".join(rows) + "</pre>" if rows else ""


Neighbours = dict[tuple[int, int], tuple[int | None, int | None]]


def _neighbours(timeline: Timeline) -> Neighbours:
    """(conflict index, step) -> (the nearest earlier, the nearest later step of that conflict
    made by another actor), in one pass over each conflict's accesses each way."""
    found: dict[tuple[int, int], list[int | None]] = {}
    for index, conflict in enumerate(timeline.conflicts):
        steps = list(dict.fromkeys(t.entry for t in conflict.touches if t.entry is not None))
        for order, side in ((steps, 0), (steps[::-1], 1)):
            last: int | None = None  # the latest step seen
            other: int | None = None  # the latest step seen by an actor other than last's
            for number in order:
                actor = timeline.entries[number - 1].actor
                if last is None or timeline.entries[last - 1].actor != actor:
                    nearest, other = last, last
                else:
                    nearest = other
                found.setdefault((index, number), [None, None])[side] = nearest
                last = number
    return {key: (pair[0], pair[1]) for key, pair in found.items()}


def _detail(entry: Entry, timeline: Timeline, neighbours: Neighbours) -> str:
    parts = [f'<div class="detail" data-step="{entry.number}" hidden>',
             f"<h2>Step {entry.number}: {_e(entry.actor_name)}</h2>",
             f'<p class="mono">{_e(entry.what)}</p>',
             f"<p>t = {entry.clock:.4f} s (virtual time)</p>"]
    if entry.where is not None:
        parts.append(f'<p class="mono">{_e(short_path(entry.where[0]))}:{entry.where[1]} in '
                     f"{_e(entry.where[2])}</p>{_source(entry.where)}")
    for note in entry.notes:
        parts.append(f'<p class="note">{_e(note)}</p>')
    if entry.accesses:
        items = "".join(
            f"<li>{'writes' if a.write else 'reads'} <code>{_e(a.what)}</code>{_e(at(a.where))}</li>"
            for a in entry.accesses)
        parts.append(f"<p>Accesses:</p><ul>{items}</ul>")
    for index in entry.conflicts:
        conflict = timeline.conflicts[index]
        before, after = neighbours.get((index, entry.number), (None, None))
        near = [f"step {_link(n)} {label}" for label, n in
                (("before it", before), ("after it", after)) if n is not None]
        parts.append(
            f'<p>Conflicts on <a class="conflictlink" href="#conflict-{index}" '
            f'data-conflict="{index}"><code>{_e(conflict.what)}</code></a> '
            f"({len(conflict.touches)} accesses)"
            + ("; nearest access by another actor: " + ", ".join(near) if near else "")
            + "</p>")
    parts.append("</div>")
    return "".join(parts)


def _link(number: int | None) -> str:
    if number is None:
        return "?"
    return f'<a class="steplink" href="#step-{number}" data-step="{number}">{number}</a>'


def render(name: str, trace: Any, error: BaseException, token: str, summary: str,
           replay_hint: str | None, notes: list[str]) -> str:
    """The page, as text."""
    from plait.errors import Deadlock

    timeline = build(trace)
    lanes = {actor: index for index, (actor, _name, _kind) in enumerate(timeline.actors)}
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>plait: {_e(name)}</title>", f"<style>{_CSS}</style></head><body>",
           f"<h1>plait: an interleaving that fails <code>{_e(name)}</code></h1>",
           f'<p class="summary">{_e(summary)}</p>']
    stories = [c.story for c in timeline.conflicts if c.story]
    for story in stories:
        out.append(f'<p class="story">{_e(story)}</p>')
    if isinstance(error, Deadlock):
        out.append(f'<div class="error">{_e(error)}</div>')
    else:
        message = str(error)
        out.append(f'<div class="error">Then {_e(type(error).__name__)}'
                   f"{': ' + _e(message) if message else ''}</div>")
    out.append(f'<div class="token">Replay with <code id="token">{_e(token)}</code>'
               f'<button id="copy" type="button">copy token</button></div>')
    hint = f'@plait.replay("{token}")'
    if replay_hint:
        hint += f"  or  {replay_hint} --plait-replay={token}"
    out.append(f'<p class="mono">{_e(hint)}</p>')
    for note in notes:
        out.append(f'<p class="note">Note: {_e(note)}</p>')
    if isinstance(error, Deadlock) and error.actors:
        out.append("<h2>Deadlock: who holds what, who waits for what</h2><ul>")
        for actor_name, held, waits, where in error.actors:
            out.append(f"<li><b>{_e(actor_name)}</b> holds {_e(held)}; waits for {_e(waits)}"
                       f"{_e(at(where))}</li>")
        out.append("</ul>")
    out.append(f"<h2>Steps, in the order they ran: {len(timeline.entries)} steps, "
               f"{len(timeline.actors)} actors</h2>")
    out.append('<div class="wrap"><table class="lanes"><thead><tr><th>#</th><th>t</th>')
    for _actor, actor_name, kind in timeline.actors:
        out.append(f'<th class="lane" title="{_e(actor_name)}">{_e(actor_name)} '
                   f'<small>({_e(kind)})</small></th>')
    out.append("</tr></thead><tbody>")
    for entry in timeline.entries:
        cells = ["<td></td>"] * len(lanes)
        classes = "step " + entry.kind + (" conflict" if entry.conflicts else "")
        what = entry.what
        related = (f' data-conflicts="{" ".join(map(str, entry.conflicts))}"'
                   if entry.conflicts else "")
        cells[lanes[entry.actor]] = (
            f'<td><span class="{classes}" id="step-{entry.number}" data-step="{entry.number}"'
            f'{related} title="{_e(what)}">{_e(what)}</span></td>')
        out.append(f'<tr><td class="n">{entry.number}</td><td class="t">{entry.clock:.4f}</td>'
                   + "".join(cells) + "</tr>")
    out.append("</tbody></table><div>")
    neighbours = _neighbours(timeline)
    out.extend(_detail(entry, timeline, neighbours) for entry in timeline.entries)
    out.append("</div></div>")
    if timeline.conflicts:
        out.append("<h2>Conflicting accesses</h2><ul class=\"conflicts\">")
        for index, conflict in enumerate(timeline.conflicts):
            touches = ", then ".join(
                f"{_e(t.actor_name)} {'wrote' if t.write else 'read'} it{_e(at(t.where))} "
                f"(step {_link(t.entry)})" for t in conflict.touches)
            out.append(f'<li id="conflict-{index}" data-conflict="{index}">'
                       f"<code>{_e(conflict.what)}</code>: {touches}</li>")
        out.append("</ul>")
    out.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(out)


def write(directory: str, name: str, key: str | None, trace: Any, error: BaseException,
          token: str, summary: str, replay_hint: str | None, notes: list[str]) -> str:
    """Write the page into ``directory`` (made if missing); returns the file's path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(os.path.abspath(directory), file_name(name, key))
    page = render(name, trace, error, token, summary, replay_hint, notes)
    with open(path, "w", encoding="utf-8") as out:
        out.write(page)
    return path
