"""Several statements sent to the database in one round trip, prepared once per connection.

A write on the apply path is a handful of small statements (lock this, update that, insert the
other); the time goes to waiting on the server between them and to planning each one, not to running
them. On PostgreSQL, with the driver binding parameters on the client (Django's default), statements
joined by semicolons travel as one message and come back as one answer per statement; a statement
marked `prepared` is planned once per connection (`PREPARE`) and then run by name (`EXECUTE`).
Elsewhere they run one by one, with the same results.

The statements run in order inside the caller's transaction; when one fails, those after it do not
run and the error is raised, so the transaction can only be rolled back.
"""

import hashlib
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DatabaseError, connection


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters (`%s` placeholders, and no other `%`).

    `prepared`: the text is fixed (built from the models alone) and runs often, so on PostgreSQL it
    is planned once per connection and run by name from then on.
    """

    sql: str
    params: Sequence[Any] = ()
    prepared: bool = False


Rows = list[tuple[Any, ...]]

_BUILT: dict[tuple[str, Hashable], Any] = {}


def built_once[T](key: Hashable, build: Callable[[], T]) -> T:
    """What `build` makes of the models alone (a statement's text, say), made once per kind of database.

    The per-write paths run thousands of times a second; quoting names and walking model metadata
    each time costs more than the statement does on the server.
    """
    full = (connection.vendor, key)
    try:
        return _BUILT[full]  # type: ignore[no-any-return]
    except KeyError:
        made = _BUILT[full] = build()
        return made


@dataclass(frozen=True)
class _Prepared:
    name: str
    body: str  # the text with $1, $2, ... for PREPARE
    call: str  # EXECUTE name(%s, ...), for the driver to fill in


_FORMS: dict[str, _Prepared] = {}
# What each open connection has prepared; None when an error left it unknown (a PREPARE sent with
# statements that failed may or may not have run). Keyed by the driver's connection, so a new
# connection starts with nothing prepared.
_PREPARED: "weakref.WeakKeyDictionary[Any, set[str] | None]" = weakref.WeakKeyDictionary()


def _prepared_form(sql: str) -> _Prepared:
    form = _FORMS.get(sql)
    if form is None:
        pieces = sql.split("%s")
        body = pieces[0] + "".join(f"${number}{piece}" for number, piece in enumerate(pieces[1:], start=1))
        name = "cs_" + hashlib.sha256(sql.encode()).hexdigest()[:24]
        placeholders = ", ".join(["%s"] * (len(pieces) - 1))
        form = _FORMS[sql] = _Prepared(
            name, body, f"EXECUTE {name}({placeholders})" if placeholders else f"EXECUTE {name}"
        )
    return form


def _prepared_on(raw: Any, cursor: Any) -> set[str]:
    known = _PREPARED.get(raw)
    if known is None:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        known = _PREPARED[raw] = {name for (name,) in cursor.fetchall()}
    return known


def _joinable(cursor: Any) -> bool:
    return connection.vendor == "postgresql" and isinstance(cursor.cursor, psycopg.ClientCursor)


def _rows(raw: Any) -> Rows:
    """The rows of the current result: none for a statement that returns none (an UPDATE, say)."""
    result = raw.pgresult
    if result is None or result.status != psycopg.pq.ExecStatus.TUPLES_OK:
        return []
    return raw.fetchall()  # type: ignore[no-any-return]


def run_together(statements: Sequence[Statement]) -> list[Rows]:
    """Run `statements` in order; return the rows each one gave (an empty list for one that gives none)."""
    results: list[Rows] = []
    with connection.cursor() as cursor:
        if not _joinable(cursor):
            for statement in statements:
                cursor.execute(statement.sql, statement.params)
                results.append(cursor.fetchall() if cursor.description is not None else [])
            return results
        raw_connection = connection.connection
        prepared = _prepared_on(raw_connection, cursor)
        parts: list[str] = []
        params: list[Any] = []
        answers: list[bool] = []  # per part: whether it answers one of `statements` (a PREPARE does not)
        preparing: list[str] = []
        for statement in statements:
            if statement.prepared:
                form = _prepared_form(statement.sql)
                if form.name not in prepared and form.name not in preparing:
                    parts.append(f"PREPARE {form.name} AS {form.body}")
                    answers.append(False)
                    preparing.append(form.name)
                parts.append(form.call)
            else:
                parts.append(statement.sql)
            answers.append(True)
            params.extend(statement.params)
        try:
            cursor.execute("; ".join(parts), params)
        except DatabaseError:
            if preparing:
                _PREPARED[raw_connection] = None  # which of them ran is not known
            raise
        prepared.update(preparing)
        raw = cursor.cursor
        for answers_one in answers:
            if answers_one:
                results.append(_rows(raw))
            if not raw.nextset():
                break
        if len(results) != len(statements):
            raise RuntimeError(f"{len(statements)} statements sent together gave {len(results)} results")
    return results
