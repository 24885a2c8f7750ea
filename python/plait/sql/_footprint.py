"""Footprints of SQL statements: which tables and rows a statement reads and writes.

A statement is parsed once per (dialect, text) with sqlglot into a :class:`Parsed`: the
tables each part of it reads or writes, and the columns its ``WHERE`` pins to values
(``id = ?``, ``id IN (1, 2)`` joined by ``AND``). The values are bound per call
(:func:`effects`), so one parse serves every execution and every parameter.

The keys, and why they are sound (coarse is sound, too fine is not). For a database ``db``
and a table ``t`` (its name lower-cased, without schema: two spellings of one table must
meet, and two tables of one name in different schemas merely conflict):

============================  =========================  ====================  ==================
access                        ``("sql", db, t)``         ``(.., t, "rows")``   ``(.., t, "row", pk)``
============================  =========================  ====================  ==================
read of the table (a scan)    read                       **write**             .
write of the table            write                      .                     .
read of row ``pk``            read                       .                     read
write of row ``pk``           read                       read                  write
============================  =========================  ====================  ==================

- A table-wide write conflicts with every access to the table (it writes the table key
  that all of them read).
- A row write conflicts with a scan through the ``rows`` key, which the scan *writes* and
  the row write reads (the roles are inverted, as for a directory listing and the creation
  of a file in it): with read/write footprints a scan must conflict with a write of any
  row while two row writes of different rows must not, and no finite set of keys does that
  unless scans write. The price: two scans of one table are ordered too (two executions
  where one would do).
- Row accesses meet only on their own row key. A row is pinned only when the ``WHERE`` (or
  an ``INSERT``'s column list) gives every primary-key column a value: any other column
  may match several rows, or a row another statement names by its primary key. An
  ``UPDATE`` that assigns a primary-key column writes the table.
- Unique constraints other than the primary key make two inserts of different rows
  conflict (one of them fails): an ``INSERT`` writes ``(.., t, "unique", cols, values)``
  for each such constraint when the values are known, and the table otherwise; an
  ``UPDATE`` that assigns such a column writes the table.
- A write to a table with foreign keys reads each parent table as a scan (the constraint
  check), and a write to a parent whose children cascade writes those children's tables.
  Views and tables with user triggers: the statement conflicts with everything.
- ``SELECT ... FOR UPDATE`` (and ``FOR NO KEY UPDATE``) is a write of what it reads (it
  takes row locks another writer waits for); ``FOR SHARE`` stays a read.
- DDL (``CREATE``, ``ALTER``, ``DROP``, ``TRUNCATE``...), calls of functions sqlglot does
  not know (``nextval``, ``pg_advisory_lock``, user functions), and anything that does not
  parse write ``OUTSIDE``: they conflict with every external effect.

A value is keyed as an int when it is an integer or a string of digits (``'1'`` and ``1``
name one row in SQLite and once cast in PostgreSQL), as text otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from plait.world import OUTSIDE, Effect

Ref = tuple[str, Any]  # ("v", value) a literal, ("p", index) positional, ("n", name) named
Pins = tuple[tuple[str, tuple[Ref, ...]], ...]  # column -> the values it may take

TX_KINDS = frozenset({"begin", "commit", "rollback", "savepoint", "release", "rollback_to"})


@dataclass(frozen=True, slots=True)
class TableUse:
    """One table as one part of a statement uses it."""

    table: str
    write: bool
    pins: Pins | None = None  # from a WHERE over this table alone; None: no usable WHERE
    rows: tuple[tuple[tuple[str, Ref], ...], ...] | None = None  # INSERT ... VALUES rows
    sets: frozenset[str] = frozenset()  # the columns an UPDATE assigns
    insert: bool = False
    upsert: bool = False  # INSERT OR REPLACE / ON CONFLICT: may touch another row


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one statement text does, before its parameters are bound."""

    kind: str  # "query", "begin", "commit", "rollback", "savepoint", "release",
    #            "rollback_to", "isolation", "local", "outside"
    uses: tuple[TableUse, ...] = ()
    isolation: str | None = None  # BEGIN ISOLATION LEVEL x / SET TRANSACTION ...
    reason: str = ""  # why a statement is "outside": "DDL", "does not parse", ...


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What the footprint needs to know of a table's schema."""

    pk: tuple[str, ...] | None = None
    unique: tuple[tuple[str, ...], ...] = ()  # unique constraints other than the pk
    parents: tuple[str, ...] = ()  # tables its foreign keys reference
    cascades: tuple[str, ...] = ()  # tables whose rows change when this one's do
    plain: bool = True  # False: a view, or user triggers: it may touch anything


Schema = Callable[[str], TableInfo | None]

_CACHE: dict[tuple[str, str], Parsed] = {}
_FIRST_WORD = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*([A-Za-z]+)", re.S)


def parse(sql: str, dialect: str) -> Parsed:
    """The statement's :class:`Parsed` form; the same text is parsed once."""
    found = _CACHE.get((dialect, sql))
    if found is None:
        found = _parse(sql, dialect)
        if len(_CACHE) > 20_000:
            _CACHE.clear()
        _CACHE[(dialect, sql)] = found
    return found


def _parse(sql: str, dialect: str) -> Parsed:
    word = _FIRST_WORD.match(sql)
    first = word.group(1).upper() if word else ""
    # sqlglot parses these as opaque commands (and logs about it): they are only names
    if first == "SAVEPOINT":
        return Parsed("savepoint")
    if first == "RELEASE":
        return Parsed("release")
    if first in ("END", "ABORT") and dialect == "postgres":
        return Parsed("commit" if first == "END" else "rollback")
    if first in ("SHOW", "RESET", "LISTEN", "UNLISTEN", "DISCARD"):
        return Parsed("local")
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError as exc:  # pragma: no cover - the extra is part of dev
        raise ImportError("plait.sql needs sqlglot to read statements: pip install "
                          "'plait[sql]' (or sqlglot)") from exc
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except Exception:
        return Parsed("outside", reason="does not parse")
    if len(trees) != 1:
        if not trees:
            return Parsed("local")
        parts = [_tree(t, exp) for t in trees]
        if all(p.kind == "query" for p in parts):
            return Parsed("query", tuple(u for p in parts for u in p.uses))
        return Parsed("outside", reason="several statements in one call")
    return _tree(trees[0], exp)


_LOCAL_PRAGMAS = frozenset({"foreign_keys", "busy_timeout", "table_info", "table_xinfo",
                            "index_list", "index_info", "foreign_key_list", "cache_size",
                            "temp_store", "recursive_triggers", "case_sensitive_like",
                            "query_only", "defer_foreign_keys", "legacy_alter_table"})


def _tree(tree: Any, exp: Any) -> Parsed:
    if isinstance(tree, exp.Transaction):
        return Parsed("begin", isolation=_isolation(" ".join(str(m) for m in
                                                             tree.args.get("modes") or ())))
    if isinstance(tree, exp.Commit):
        return Parsed("commit")
    if isinstance(tree, exp.Rollback):
        return Parsed("rollback_to" if tree.args.get("savepoint") else "rollback")
    if isinstance(tree, exp.Set):
        level = _isolation(tree.sql())
        return Parsed("isolation", isolation=level) if level else Parsed("local")
    if isinstance(tree, exp.Pragma):
        inner = tree.this
        name = inner.this.name if isinstance(inner, exp.EQ) else getattr(inner, "name", "")
        if str(name).lower() in _LOCAL_PRAGMAS:
            return Parsed("local")
        return Parsed("outside", reason="PRAGMA")
    if isinstance(tree, (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Command)):
        return Parsed("outside", reason="DDL" if not isinstance(tree, exp.Command)
                      else "not understood")
    if not isinstance(tree, (exp.Query, exp.Insert, exp.Update, exp.Delete)):
        return Parsed("outside", reason="not understood")
    if any(isinstance(node, exp.Anonymous) for node in tree.walk()):
        return Parsed("outside", reason="calls a function whose effects are unknown")
    return Parsed("query", tuple(_uses(tree, exp)))


def _isolation(text: str) -> str | None:
    match = re.search(r"ISOLATION\s+LEVEL\s+(READ\s+UNCOMMITTED|READ\s+COMMITTED|"
                      r"REPEATABLE\s+READ|SERIALIZABLE)", text, re.I)
    return " ".join(match.group(1).upper().split()) if match else None


def _uses(tree: Any, exp: Any) -> list[TableUse]:
    positions = _positions(tree, exp)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    uses: list[TableUse] = []
    targets: set[int] = set()  # Table nodes that are written (not read) by their statement

    def name(table: Any) -> str:
        return str(table.name).lower()

    for node in tree.walk(bfs=False):
        if isinstance(node, exp.Insert):
            target = node.this.this if isinstance(node.this, exp.Schema) else node.this
            if not isinstance(target, exp.Table):
                continue
            targets.add(id(target))
            columns = ([str(c.name).lower() for c in node.this.expressions]
                       if isinstance(node.this, exp.Schema) else None)
            rows = None
            values = node.expression
            if columns is not None and isinstance(values, exp.Values):
                rows = tuple(  # a value that is an expression stays unknown (absent)
                    tuple((col, ref) for col, v in zip(columns, row.expressions, strict=False)
                          if (ref := _ref(v, positions, exp)) is not None)
                    for row in values.expressions if isinstance(row, exp.Tuple))
            upsert = bool(node.args.get("conflict") or node.args.get("alternative")
                          or node.args.get("ignore"))
            uses.append(TableUse(name(target), True, rows=rows, insert=True, upsert=upsert))
        elif isinstance(node, (exp.Update, exp.Delete)):
            target = node.this
            if not isinstance(target, exp.Table):
                continue
            targets.add(id(target))
            alone = not node.args.get("from_") and not node.args.get("joins") \
                and not node.args.get("using")
            pins = _pins(node.args.get("where"), target, positions, exp) if alone else None
            sets = frozenset(
                str(e.this.name).lower() for e in node.expressions
                if isinstance(e, exp.EQ) and isinstance(e.this, exp.Column)) \
                if isinstance(node, exp.Update) else frozenset()
            if isinstance(node, exp.Update) and any(
                    not (isinstance(e, exp.EQ) and isinstance(e.this, exp.Column))
                    for e in node.expressions):
                pins = None
            uses.append(TableUse(name(target), True, pins=pins, sets=sets))
        elif isinstance(node, exp.Select):
            sources = []
            from_ = node.args.get("from_")
            if from_ is not None and isinstance(from_.this, exp.Table):
                sources.append(from_.this)
            joins = node.args.get("joins") or []
            sources += [j.this for j in joins if isinstance(j.this, exp.Table)]
            locks = node.args.get("locks") or []
            lock_write = any(lock.args.get("update") for lock in locks)
            for table in sources:
                if name(table) in ctes and not table.db:
                    continue
                targets.add(id(table))
                pins = (_pins(node.args.get("where"), table, positions, exp)
                        if len(sources) == 1 and not joins else None)
                uses.append(TableUse(name(table), lock_write, pins=pins))
    # tables named anywhere else (subqueries in FROM, DELETE ... USING, UPDATE ... FROM)
    for table in tree.find_all(exp.Table):
        if id(table) not in targets and not (name(table) in ctes and not table.db) \
                and table.name:
            uses.append(TableUse(name(table), False))
    return uses


def _positions(tree: Any, exp: Any) -> dict[int, int]:
    """Positional placeholders (``?``, ``%s``, ``$n``) in the order the text has them."""
    found: dict[int, int] = {}
    count = 0
    for node in tree.walk(bfs=False):
        if isinstance(node, exp.Placeholder) and not node.this:
            found[id(node)] = count
            count += 1
        elif isinstance(node, exp.Placeholder) and str(node.this).isdigit():
            found[id(node)] = int(str(node.this)) - 1  # SQLite's ?NNN
        elif isinstance(node, exp.Parameter) and str(node.name).isdigit():
            found[id(node)] = int(str(node.name)) - 1  # PostgreSQL's $n
    return found


def _ref(node: Any, positions: dict[int, int], exp: Any) -> Ref | None:
    if isinstance(node, exp.Literal):
        return ("v", str(node.this) if node.is_string else _number(str(node.this)))
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) \
            and not node.this.is_string:
        return ("v", _number("-" + str(node.this.this)))
    if isinstance(node, exp.Cast):
        return _ref(node.this, positions, exp)
    if id(node) in positions:
        return ("p", positions[id(node)])
    if isinstance(node, exp.Placeholder) and node.this:
        return ("n", str(node.name))
    return None


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _pins(where: Any, table: Any, positions: dict[int, int], exp: Any) -> Pins | None:
    """Columns of ``table`` the WHERE's top-level AND gives values to."""
    if where is None:
        return None
    names = {str(table.name).lower(), str(table.alias_or_name).lower()}
    found: dict[str, tuple[Ref, ...]] = {}
    stack = [where.this]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Paren):
            stack.append(node.this)
        elif isinstance(node, exp.And):
            stack += [node.this, node.expression]
        elif isinstance(node, exp.EQ):
            column, value = node.this, node.expression
            if not isinstance(column, exp.Column):
                column, value = value, column
            ref = _ref(value, positions, exp)
            if isinstance(column, exp.Column) and ref is not None and (
                    not column.table or column.table.lower() in names):
                found.setdefault(str(column.name).lower(), (ref,))
        elif isinstance(node, exp.In) and isinstance(node.this, exp.Column) \
                and not node.args.get("query") and node.expressions:
            refs = [_ref(v, positions, exp) for v in node.expressions]
            if all(r is not None for r in refs) and (
                    not node.this.table or node.this.table.lower() in names):
                found.setdefault(str(node.this.name).lower(), tuple(r for r in refs if r))
    return tuple(found.items())


# -- binding: the effects of one call -----------------------------------------------------------
_MISSING = object()
MAX_ROWS = 32  # a statement pinning more rows than this is keyed by its table


def value_key(value: Any) -> Any:
    """A pk value as a key part: ints and digit strings as int, the rest as text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bytes):
        return value
    text = value if isinstance(value, str) else str(value)
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    return text


def _bind(ref: Ref, params: Any) -> Any:
    kind, what = ref
    if kind == "v":
        return what
    try:
        if kind == "p":
            if isinstance(params, Mapping) or params is None:
                return _MISSING
            return params[what]
        if isinstance(params, Mapping):
            return params[what]
    except (IndexError, KeyError, TypeError):
        pass
    return _MISSING


def effects(parsed: Parsed, params: Any, db: str, schema: Schema | None) -> list[Effect]:
    """The statement's effects with ``params`` bound (the transaction's are added by the
    caller). ``schema(table)`` says a table's primary key and constraints; None or an
    unknown table: keyed by the table (coarse, sound)."""
    if parsed.kind == "outside":
        return [Effect(OUTSIDE, True, f"the database ({parsed.reason})", race=False)]
    out: list[Effect] = []
    for use in parsed.uses:
        info = schema(use.table) if schema is not None else None
        if info is not None and not info.plain:
            return [Effect(OUTSIDE, True, f"the database ({use.table} is a view or has "
                                          f"triggers)", race=False)]
        out.extend(_use_effects(use, info, params, db))
        if use.write and info is not None:
            for parent in info.parents:
                out.append(Effect(("sql", db, parent, "rows"), True, f"the rows of {parent}",
                                  race=False))
            for child in info.cascades:
                out.append(Effect(("sql", db, child), True, f"table {child}"))
    return out


def _use_effects(use: TableUse, info: TableInfo | None, params: Any, db: str) -> list[Effect]:
    table = use.table
    whole = ("sql", db, table)
    rows = _rows(use, info, params)
    if rows is None:  # the table as a whole
        if use.write:
            return [Effect(whole, True, f"table {table}")]
        return [Effect(whole, False, f"table {table}"),
                Effect(("sql", db, table, "rows"), True, f"the rows of {table}", race=False)]
    out = [Effect(whole, False, f"table {table}", race=False)]
    if use.write:
        out.append(Effect(("sql", db, table, "rows"), False, f"the rows of {table}",
                          race=False))
    for pk in rows:
        label = f"{table} row {pk if not isinstance(pk, tuple) else ', '.join(map(str, pk))}"
        out.append(Effect(("sql", db, table, "row", pk), use.write, label))
    if use.insert and info is not None:
        for cols in info.unique:
            values = _unique_values(use, cols, params)
            if values is None:
                return [Effect(whole, True, f"table {table}")]
            for value in values:
                out.append(Effect(("sql", db, table, "unique", cols, value), True,
                                  f"{table} ({', '.join(cols)}) = {value}"))
    return out


def _rows(use: TableUse, info: TableInfo | None, params: Any) -> list[Any] | None:
    """The primary keys of the rows the use is confined to, or None (the whole table)."""
    if info is None or not info.pk:
        return None
    pk = info.pk
    if use.insert:
        if use.upsert or use.rows is None:
            return None
        found: list[Any] = []
        for parts in _row_values(use.rows, pk, params):
            if parts is None or any(p is None for p in parts):
                return None  # generated by the database: which row is unknown
            found.append(parts[0] if len(parts) == 1 else tuple(parts))
        return found if len(found) <= MAX_ROWS else None
    if use.sets & set(pk) or (use.sets and any(set(c) & use.sets for c in info.unique)):
        return None  # moves a row to another key, or takes a unique value another row wants
    if use.pins is None:
        return None
    pinned = dict(use.pins)
    if not all(col in pinned for col in pk):
        return None
    choices: list[list[Any]] = []
    for col in pk:
        bound = [_bind(ref, params) for ref in pinned[col]]
        if any(v is _MISSING or v is None for v in bound):
            return None
        choices.append([value_key(v) for v in bound])
    combos = list(product(*choices))
    if len(combos) > MAX_ROWS:
        return None
    return [c[0] if len(c) == 1 else tuple(c) for c in combos]


def _row_values(rows: Any, cols: tuple[str, ...], params: Any) -> Iterator[list[Any] | None]:
    """Each inserted row's value keys for ``cols`` (None for a NULL), or None for a row
    where one of them is not known (a default, an expression)."""
    for row in rows:
        values = dict(row)
        bound = [_bind(values[col], params) if col in values and values[col] is not None
                 else _MISSING for col in cols]
        yield None if any(v is _MISSING for v in bound) else \
            [None if value is None else value_key(value) for value in bound]


def _unique_values(use: TableUse, cols: tuple[str, ...], params: Any) -> list[Any] | None:
    if use.rows is None:
        return None
    out = []
    for parts in _row_values(use.rows, cols, params):
        if parts is None:
            return None
        if any(p is None for p in parts):
            continue  # NULLs never collide in a unique constraint
        out.append(parts[0] if len(parts) == 1 else tuple(parts))
    return out


def statement_text(sql: str, params: Any, limit: int = 200) -> str:
    text = " ".join(sql.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if params is None or (isinstance(params, Sequence | Mapping) and not params):
        return text
    shown = repr(tuple(params) if isinstance(params, list) else params)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{text} {shown}"
