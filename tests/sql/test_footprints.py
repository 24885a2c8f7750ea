"""Footprints parsed from SQL text: which keys a statement reads and writes."""

from __future__ import annotations

from typing import Any

from plait.sql._footprint import TableInfo, effects, parse
from plait.world import OUTSIDE

ACCOUNTS = TableInfo(pk=("id",))
SCHEMA = {"accounts": ACCOUNTS, "seats": TableInfo(pk=("id",)),
          "users": TableInfo(pk=("id",), unique=(("email",),)),
          "items": TableInfo(pk=("order_id", "line"))}


def keys(sql: str, params: Any = None, dialect: str = "sqlite") -> set[tuple[Any, bool]]:
    found = effects(parse(sql, dialect), params, "db", SCHEMA.get)
    return {(e.key, e.write) for e in found}


def conflict(a: set[tuple[Any, bool]], b: set[tuple[Any, bool]]) -> bool:
    return any(ka == kb and (wa or wb) for ka, wa in a for kb, wb in b)


ROW1 = ("sql", "db", "accounts", "row", 1)


def test_a_pinned_read_and_write_touch_their_row() -> None:
    read = keys("SELECT balance FROM accounts WHERE id = ?", (1,))
    write = keys("UPDATE accounts SET balance = ? WHERE id = ?", (90, 1))
    assert (ROW1, False) in read and (ROW1, True) in write
    assert conflict(read, write)


def test_rows_of_one_table_do_not_conflict_with_each_other() -> None:
    one = keys("UPDATE accounts SET balance = balance - 1 WHERE id = :id", {"id": 1})
    two = keys("UPDATE accounts SET balance = balance - 1 WHERE id = :id", {"id": 2})
    assert not conflict(one, two)
    assert not conflict(keys("SELECT * FROM accounts WHERE id = 1"), two)


def test_a_table_wide_access_conflicts_with_row_accesses() -> None:
    scan = keys("SELECT sum(balance) FROM accounts")
    wide = keys("UPDATE accounts SET balance = 0")
    row_write = keys("UPDATE accounts SET balance = 5 WHERE id = 3")
    row_read = keys("SELECT balance FROM accounts WHERE id = 3")
    assert conflict(scan, row_write) and conflict(wide, row_read) and conflict(wide, row_write)
    assert conflict(wide, scan)
    assert not conflict(scan, row_read)


def test_statements_on_different_tables_do_not_conflict() -> None:
    assert not conflict(keys("UPDATE accounts SET balance = 0"),
                        keys("UPDATE seats SET taken = 1"))


def test_a_value_pinned_by_a_column_other_than_the_primary_key_is_the_table() -> None:
    by_name = keys("UPDATE accounts SET balance = 0 WHERE owner = 'ann'")
    assert (("sql", "db", "accounts"), True) in by_name
    assert conflict(by_name, keys("SELECT balance FROM accounts WHERE id = 7"))


def test_placeholders_of_each_style_bind_their_parameters() -> None:
    for sql, params, dialect in [
            ("SELECT * FROM accounts WHERE id = ?", (1,), "sqlite"),
            ("SELECT * FROM accounts WHERE id = :n", {"n": 1}, "sqlite"),
            ("SELECT * FROM accounts WHERE id = %s", (1,), "postgres"),
            ("SELECT * FROM accounts WHERE id = %(n)s", {"n": "1"}, "postgres"),
            ("SELECT * FROM accounts WHERE id = $1", (1,), "postgres"),
            ("SELECT * FROM accounts WHERE id = '1'", None, "postgres")]:
        assert (ROW1, False) in keys(sql, params, dialect), sql
    in_list = keys("SELECT * FROM accounts WHERE id IN (1, ?) AND balance > 0", (2,))
    assert (ROW1, False) in in_list and (("sql", "db", "accounts", "row", 2), False) in in_list


def test_for_update_is_a_write_for_share_a_read() -> None:
    locked = keys("SELECT * FROM seats WHERE id = %s FOR UPDATE", (4,), "postgres")
    shared = keys("SELECT * FROM seats WHERE id = %s FOR SHARE", (4,), "postgres")
    assert (("sql", "db", "seats", "row", 4), True) in locked
    assert (("sql", "db", "seats", "row", 4), False) in shared
    assert not conflict(shared, shared) and conflict(locked, locked)


def test_inserts_key_by_primary_key_and_unique_values() -> None:
    a = keys("INSERT INTO users (id, email) VALUES (?, ?)", (1, "a@x"))
    b = keys("INSERT INTO users (id, email) VALUES (?, ?)", (2, "a@x"))
    c = keys("INSERT INTO users (id, email) VALUES (?, ?)", (3, "c@x"))
    assert conflict(a, b) and not conflict(a, c)
    generated = keys("INSERT INTO users (email) VALUES (?)", ("d@x",))
    assert (("sql", "db", "users"), True) in generated  # which row is the database's choice
    assert conflict(keys("SELECT count(*) FROM users WHERE email = 'c@x'"), c)


def test_composite_keys_need_every_column() -> None:
    both = keys("DELETE FROM items WHERE order_id = 1 AND line = 2")
    part = keys("DELETE FROM items WHERE order_id = 1")
    assert (("sql", "db", "items", "row", (1, 2)), True) in both
    assert (("sql", "db", "items"), True) in part


def test_changing_a_primary_key_writes_the_table() -> None:
    assert (("sql", "db", "accounts"), True) in keys("UPDATE accounts SET id = 9 WHERE id = 1")


def test_joins_and_subqueries_read_every_table() -> None:
    joined = keys("SELECT * FROM accounts a JOIN seats s ON s.owner = a.id WHERE a.id = 1")
    assert {(("sql", "db", "accounts"), False), (("sql", "db", "seats"), False)} <= joined
    nested = keys("UPDATE seats SET taken = 1 WHERE id = (SELECT max(id) FROM accounts)")
    assert (("sql", "db", "accounts"), False) in nested and \
        (("sql", "db", "seats"), True) in nested
    cte = keys("WITH rich AS (SELECT id FROM accounts WHERE balance > 5) SELECT * FROM rich")
    assert all(key[2] != "rich" for key, _ in cte)


def test_ddl_unknown_functions_and_garbage_conflict_with_everything() -> None:
    for sql in ("CREATE TABLE t (id INTEGER)", "DROP TABLE accounts", "TRUNCATE seats",
                "SELECT nextval('seats_id_seq')", "this is not sql (", "VACUUM"):
        assert (OUTSIDE, True) in keys(sql, dialect="postgres"), sql


def test_transaction_statements_are_recognised() -> None:
    assert parse("BEGIN", "sqlite").kind == "begin"
    assert parse("BEGIN ISOLATION LEVEL SERIALIZABLE", "postgres").isolation == "SERIALIZABLE"
    assert parse("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                 "postgres").isolation == "REPEATABLE READ"
    assert parse("COMMIT", "postgres").kind == "commit"
    assert parse("ROLLBACK", "postgres").kind == "rollback"
    assert parse("SAVEPOINT sp1", "postgres").kind == "savepoint"
    assert parse("RELEASE SAVEPOINT sp1", "postgres").kind == "release"
    assert parse("ROLLBACK TO SAVEPOINT sp1", "postgres").kind == "rollback_to"


def test_the_same_text_is_parsed_once() -> None:
    assert parse("SELECT * FROM accounts WHERE id = ?", "sqlite") is \
        parse("SELECT * FROM accounts WHERE id = ?", "sqlite")
