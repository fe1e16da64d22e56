"""The `sql` connector: a record type kept in a table of the company's own PostgreSQL database.

The database is not Countersign's: its URL comes from the environment, its table and columns keep
their own names (the binding maps each catalogue field to a column), and Countersign's transaction
does not reach it. Every write is one compare-and-set statement on the table's integer version
column, sent on its own in autocommit (`UPDATE … SET …, version = version + 1 WHERE key = %s AND
version = %s RETURNING …`), so a write is either done whole or refused; `restore_many` and
`create_many` run their statements in one transaction of that database.

One connection per store per thread, opened on first use and opened again after it drops (or when
the process was forked since). A
connection that cannot be made, a statement that does not answer within the binding's timeouts
(`connect_timeout`, `statement_timeout`, in seconds, 5 by default) or any error of the database
raises `StoreUnavailable`: the caller keeps its work and finds out later what the store holds. A read
on a connection that turns out to have dropped is tried once more on a new one; a write never is.
"""

import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from records.catalogue import RECORD_TYPES, FieldSpec, Kind
from records.store.connectors import ACTIONS, Problems, StoreCheck
from records.store.protocol import (
    MovedReference,
    NotSupported,
    RecordNotFound,
    RecordRef,
    RecordState,
    Snapshot,
    StoreUnavailable,
    VersionMismatch,
)
from records.store.registry import get_store

REQUIRED = ("database", "table", "key", "version")
OPTIONAL = ("archived", "deleted", "connect_timeout", "statement_timeout")
DEFAULT_TIMEOUT_SECONDS = 5.0
CHUNK = 1000
_TEXT_KINDS = (Kind.TEXT, Kind.EMAIL, Kind.ENUM, Kind.REF)

T = TypeVar("T")


@dataclass(frozen=True)
class Column:
    """A column as PostgreSQL describes it: its type's name and category, and for an array the
    category of its elements."""

    type_name: str
    category: str
    element_category: str = ""

    @property
    def is_text(self) -> bool:
        return self.category == "S"

    @property
    def is_json(self) -> bool:
        return self.type_name in ("json", "jsonb")


def compatible(kind: Kind, column: Column) -> bool:
    """Whether a catalogue field of `kind` can live in `column` without losing anything."""
    if kind in _TEXT_KINDS:
        return column.is_text
    if kind == Kind.BOOL:
        return column.type_name == "bool"
    if kind == Kind.DECIMAL:
        return column.type_name == "numeric"
    if kind == Kind.TAGS:
        return column.is_json or (column.category == "A" and column.element_category == "S")
    return False  # pragma: no cover - every kind is listed above


_EXPECTED = {
    Kind.TEXT: "a text column",
    Kind.EMAIL: "a text column",
    Kind.ENUM: "a text column",
    Kind.REF: "a text column holding the other record's id",
    Kind.BOOL: "a boolean column",
    Kind.DECIMAL: "a numeric column",
    Kind.TAGS: "a text[] or json column",
}


def _plain(spec: FieldSpec, value: Any) -> Any:
    """A column's value in the catalogue's plain form."""
    if value is None:
        if spec.kind == Kind.TAGS:
            return []
        if spec.kind == Kind.BOOL:
            return False
        return None if spec.kind == Kind.DECIMAL else ""
    if spec.kind == Kind.DECIMAL:
        return str(Decimal(value).quantize(Decimal("0.01")))
    if spec.kind == Kind.TAGS:
        return [str(tag) for tag in value]
    if spec.kind == Kind.BOOL:
        return bool(value)
    return str(value)


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
        return None
    return float(value)


class SqlRecordStore:
    """A record type in a table of another PostgreSQL database, reached with psycopg."""

    in_default_database = False
    system_label = "the company's database"

    # As a connector ------------------------------------------------------------------------------

    @classmethod
    def validate(cls, settings: Mapping[str, Any], fields: Mapping[str, str], *, record_type: str) -> Problems:
        problems: Problems = []
        for key in REQUIRED:
            value = settings.get(key)
            if not isinstance(value, str) or not value.strip():
                problems.append((key, "is required" if value is None else "must be a non-empty string"))
        for key in ("archived", "deleted"):
            if key in settings and (not isinstance(settings[key], str) or not settings[key].strip()):
                problems.append((key, "must name a timestamp column"))
        for key in ("connect_timeout", "statement_timeout"):
            if key in settings and _seconds(settings[key]) is None:
                problems.append((key, "must be a number of seconds, more than 0 and at most 600"))
        for key in sorted(set(settings) - set(REQUIRED) - set(OPTIONAL)):
            problems.append((key, f"unknown key for the sql connector; known: {', '.join(REQUIRED + OPTIONAL)}"))
        if not fields:
            problems.append(("fields", "map at least one catalogue field to a column"))
        own = {settings.get(key) for key in ("key", "version", "archived", "deleted")} - {None}
        for name, column in fields.items():
            if column in own:
                problems.append((f"fields.{name}", f"'{column}' is the table's key, version or archive column"))
        return problems

    @classmethod
    def from_binding(
        cls,
        *,
        record_type: str,
        settings: Mapping[str, Any],
        fields: Mapping[str, str],
        side_effects: Mapping[str, str],
    ) -> "SqlRecordStore":
        return cls(
            record_type=record_type,
            url=str(settings["database"]),
            table=str(settings["table"]),
            key=str(settings["key"]),
            version=str(settings["version"]),
            fields=dict(fields),
            archived=settings.get("archived"),
            deleted=settings.get("deleted"),
            connect_timeout=_seconds(settings.get("connect_timeout")) or DEFAULT_TIMEOUT_SECONDS,
            statement_timeout=_seconds(settings.get("statement_timeout")) or DEFAULT_TIMEOUT_SECONDS,
            side_effects=dict(side_effects),
        )

    def __init__(
        self,
        *,
        record_type: str,
        url: str,
        table: str,
        key: str,
        version: str,
        fields: dict[str, str],
        archived: str | None = None,
        deleted: str | None = None,
        connect_timeout: float = DEFAULT_TIMEOUT_SECONDS,
        side_effects: dict[str, str] | None = None,
        statement_timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.record_type = record_type
        self.url = url
        self.table_name = table
        self.table = sql.Identifier(*table.split(".", 1))
        self.key, self.version = sql.Identifier(key), sql.Identifier(version)
        self.key_name, self.version_name = key, version
        self.columns = dict(fields)
        self.archived_name, self.deleted_name = archived, deleted
        self.connect_timeout, self.statement_timeout = connect_timeout, statement_timeout
        self.side_effects = dict(side_effects or {})  # catalogue field -> what the database itself does on a write
        self.label = f"sql store of {record_type} ({table})"
        self._local = threading.local()
        self._column_types: dict[str, Column] | None = None

    def supports(self, action: str) -> bool:
        return (
            {
                "update": True,
                "archive": self.archived_name is not None,
                "delete": self.deleted_name is not None,
                "merge": False,  # it does not move related rows
            }[action]
            if action in ACTIONS
            else False
        )

    # Connection -----------------------------------------------------------------------------------

    def _connection(self) -> tuple[psycopg.Connection, bool]:
        """This thread's connection, and whether it was just opened."""
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) != os.getpid():
            conn = None  # opened before this process was forked (a worker's pool): the parent's to use
        if conn is not None and not conn.closed and not conn.broken:
            return conn, False
        if conn is not None:
            conn.close()  # dropped: let go of it before opening another
            self._local.conn = None
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self.connect_timeout)),
                options=f"-c statement_timeout={int(self.statement_timeout * 1000)}",
                tcp_user_timeout=int((self.connect_timeout + self.statement_timeout) * 1000),
                application_name="countersign",
            )
        except psycopg.Error as error:
            raise StoreUnavailable(self.label, str(error).strip() or type(error).__name__) from None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn, True

    def close(self) -> None:
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _run(self, work: Callable[[psycopg.Connection], T], *, read: bool) -> T:
        """`work` on this thread's connection. Any database error is StoreUnavailable; a read whose
        reused connection had dropped is tried once more on a new one."""
        conn, fresh = self._connection()
        try:
            return work(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            if read and not fresh and (conn.broken or conn.closed):
                return self._run(work, read=read)
            raise StoreUnavailable(self.label, str(error).strip() or type(error).__name__) from None
        except psycopg.Error as error:
            raise StoreUnavailable(self.label, str(error).strip() or type(error).__name__) from None

    def _rows(
        self, query: sql.Composed | sql.SQL, params: Sequence[Any], *, read: bool = True
    ) -> list[tuple[Any, ...]]:
        def work(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
            with conn.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if cursor.description else []

        return self._run(work, read=read)

    # Reading --------------------------------------------------------------------------------------

    def _specs(self, fields: list[str] | None) -> list[FieldSpec]:
        record_type = RECORD_TYPES[self.record_type]
        names = list(self.columns) if fields is None else fields
        unmapped = [name for name in names if name not in self.columns]
        if unmapped:
            raise NotSupported(f"the {self.label} does not map {', '.join(unmapped)}")
        return [record_type.field(name) for name in names]

    def _select(self, specs: list[FieldSpec]) -> sql.Composed:
        """Key, version, archived, deleted, title, then each field's column."""
        title = self.columns.get(RECORD_TYPES[self.record_type].title_field)
        hidden = [sql.Identifier(name) if name else sql.NULL for name in (self.archived_name, self.deleted_name)]
        columns = [
            self.key,
            self.version,
            *hidden,
            sql.Identifier(title) if title else self.key,
            *(sql.Identifier(self.columns[spec.name]) for spec in specs),
        ]
        return sql.SQL(", ").join(columns)

    def _state(self, specs: list[FieldSpec], row: Sequence[Any]) -> RecordState:
        record_id, version, archived_at, deleted_at, title, *values = row
        return RecordState(
            ref=RecordRef(self.record_type, str(record_id)),
            version=int(version),
            values={spec.name: _plain(spec, value) for spec, value in zip(specs, values, strict=True)},
            title=str(title or record_id),
            archived=archived_at is not None,
            deleted=deleted_at is not None,
        )

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        """One SELECT. `lock` takes no lock here: the table is in another database, outside the
        caller's transaction, and every write is a compare-and-set on the version instead."""
        specs = self._specs(fields)
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(self._select(specs), self.table, self.key)
        rows = self._rows(query, [ref.record_id])
        if not rows:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
        return self._state(specs, rows[0])

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        """One SELECT per thousand ids."""
        specs = self._specs(fields)
        query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(self._select(specs), self.table, self.key)
        ordered = sorted(set(record_ids))
        found = {}
        for start in range(0, len(ordered), CHUNK):
            for row in self._rows(query, [ordered[start : start + CHUNK]]):
                state = self._state(specs, row)
                found[state.ref.record_id] = state
        return found

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> None:
        return None

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        found = self.snapshot_many(ref.record_type, [ref.record_id])
        if ref.record_id not in found:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
        return found[ref.record_id]

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        """As `fetch_many`, with the moments the record was hidden. No lock (see `fetch`)."""
        specs = self._specs(None)
        query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s) ORDER BY {}").format(
            self._select(specs), self.table, self.key, self.key
        )
        ordered = sorted(set(record_ids))
        found: dict[str, Snapshot] = {}
        for start in range(0, len(ordered), CHUNK):
            for row in self._rows(query, [ordered[start : start + CHUNK]]):
                state = self._state(specs, row)
                found[state.ref.record_id] = {
                    "values": state.values,
                    "version": state.version,
                    "archived_at": _iso(row[2]),
                    "deleted_at": _iso(row[3]),
                }
        return found

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        """The records whose mapped reference column holds `target_id`; none when `field` is not mapped."""
        column = self.columns.get(field)
        if column is None:
            return []
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s ORDER BY {}").format(
            self.key, self.table, sql.Identifier(column), self.key
        )
        return [str(row[0]) for row in self._rows(query, [target_id])]

    # Writing --------------------------------------------------------------------------------------

    def _types(self) -> dict[str, Column]:
        """The table's columns and their types, read once per store."""
        if self._column_types is None:
            self._column_types = self._describe()
        return self._column_types

    def _describe(self) -> dict[str, Column]:
        query = sql.SQL(
            "SELECT a.attname, t.typname, t.typcategory, coalesce(e.typcategory, '') "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem "
            "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        )

        def work(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
            with conn.cursor() as cursor:
                cursor.execute(query, [self.table.as_string(conn)])
                return cursor.fetchall()

        return {
            str(name): Column(str(type_name), str(cat), str(elem))
            for name, type_name, cat, elem in self._run(work, read=True)
        }

    def _param(self, spec: FieldSpec, value: Any) -> Any:
        """A plain value as the column takes it."""
        if spec.kind == Kind.DECIMAL:
            return Decimal(value)
        if spec.kind == Kind.TAGS:
            return Jsonb(list(value)) if self._types()[self.columns[spec.name]].is_json else list(value)
        return value

    def _refuse_missing_references(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            spec = RECORD_TYPES[self.record_type].field(name)
            if spec.kind == Kind.REF and not get_store(spec.ref_type).fetch_many(spec.ref_type, [value], fields=[]):
                raise RecordNotFound(f"no {spec.ref_type} '{value}' for {name}")

    def _refused(self, ref: RecordRef, expected_version: int) -> Exception:
        """Why a compare-and-set changed no row: the record is at another version, or is not there."""
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(self.version, self.table, self.key)
        rows = self._rows(query, [ref.record_id])
        if not rows:
            return RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
        return VersionMismatch(ref, expected_version, int(rows[0][0]))

    def _assignments(self, specs: list[FieldSpec]) -> list[sql.Composable]:
        return [sql.SQL("{} = %s").format(sql.Identifier(self.columns[spec.name])) for spec in specs]

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        """One compare-and-set: `UPDATE … SET …, version = version + 1 WHERE key = %s AND version = %s
        RETURNING version`."""
        specs = self._specs(list(values))
        self._refuse_missing_references(values)
        bump = sql.SQL("{} = {} + 1").format(self.version, self.version)
        query = sql.SQL("UPDATE {} SET {} WHERE {} = %s AND {} = %s RETURNING {}").format(
            self.table, sql.SQL(", ").join([*self._assignments(specs), bump]), self.key, self.version, self.version
        )
        params = [self._param(spec, values[spec.name]) for spec in specs]
        rows = self._rows(query, [*params, ref.record_id, expected_version], read=False)
        if not rows:
            raise self._refused(ref, expected_version)
        written = {spec.name: _plain(spec, values[spec.name]) for spec in specs}
        return RecordState(ref=ref, version=int(rows[0][0]), values=written)

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> None:
        return None

    def _hidden_assignment(self, column: str | None, hide: bool, action: str) -> list[sql.Composable]:
        if column is None:
            if hide:
                raise NotSupported(f"the {self.label} cannot {action}: its binding names no {action} column")
            return []
        name = sql.Identifier(column)
        if hide:
            return [sql.SQL("{} = coalesce({}, now())").format(name, name)]
        return [sql.SQL("{} = NULL").format(name)]

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        """One compare-and-set on the archive and delete columns; a record hidden again keeps the
        moment it was first hidden."""
        assignments = [
            *self._hidden_assignment(self.archived_name, archived, "archive"),
            *self._hidden_assignment(self.deleted_name, deleted, "delete"),
            sql.SQL("{} = {} + 1").format(self.version, self.version),
        ]
        specs = self._specs(None)
        query = sql.SQL("UPDATE {} SET {} WHERE {} = %s AND {} = %s RETURNING {}").format(
            self.table, sql.SQL(", ").join(assignments), self.key, self.version, self._select(specs)
        )
        rows = self._rows(query, [ref.record_id, expected_version], read=False)
        if not rows:
            raise self._refused(ref, expected_version)
        return self._state(specs, rows[0])

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        """Every record in one transaction of the store's database: each a compare-and-set that
        sets the snapshot's version; the first refusal rolls all of them back."""
        for _, snapshot, _ in items:
            self._refuse_missing_references(snapshot["values"])

        def work(conn: psycopg.Connection) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                for record_id, snapshot, expected_version in items:
                    specs = self._specs(list(snapshot["values"]))
                    assignments = self._assignments(specs)
                    params = [self._param(spec, snapshot["values"][spec.name]) for spec in specs]
                    for column, moment in ((self.archived_name, "archived_at"), (self.deleted_name, "deleted_at")):
                        if column is not None:
                            assignments.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
                            params.append(snapshot.get(moment))
                        elif snapshot.get(moment):
                            raise NotSupported(f"the {self.label} has no column for {moment}")
                    assignments.append(sql.SQL("{} = %s").format(self.version))
                    params.append(snapshot["version"])
                    query = sql.SQL("UPDATE {} SET {} WHERE {} = %s AND {} = %s RETURNING {}").format(
                        self.table, sql.SQL(", ").join(assignments), self.key, self.version, self.key
                    )
                    cursor.execute(query, [*params, record_id, expected_version])
                    if not cursor.fetchall():
                        raise _Refused(RecordRef(record_type, record_id), expected_version)

        try:
            self._run(work, read=False)
        except _Refused as refused:
            raise self._refused(refused.ref, refused.expected_version) from None

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        """Refused when any record refers to `from_id`: this store does not move related rows."""
        if self.referring(record_type, field, from_id):
            raise NotSupported(f"the {self.label} does not move related rows, so a merge cannot move its records")
        return []

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """One transaction of the store's database, one INSERT per record."""
        for _, values in records:
            self._refuse_missing_references(values)

        def work(conn: psycopg.Connection) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                for record_id, values in records:
                    specs = self._specs(list(values))
                    columns = [self.key, self.version, *(sql.Identifier(self.columns[spec.name]) for spec in specs)]
                    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        self.table, sql.SQL(", ").join(columns), sql.SQL(", ").join([sql.Placeholder()] * len(columns))
                    )
                    cursor.execute(query, [record_id, 1, *(self._param(spec, values[spec.name]) for spec in specs)])

        self._run(work, read=False)

    # Checking -------------------------------------------------------------------------------------

    def check(self, record_type: str) -> StoreCheck:
        """Connect, describe the table, read one record: every mapped column must exist with a type
        the field's kind can live in; the key a text column, the version an integer, the archive and
        delete columns timestamps."""
        try:
            self._connection()
        except StoreUnavailable as error:
            return StoreCheck(reachable=False, problems=[("database", error.reason)])
        try:
            described = self._describe()
        except StoreUnavailable as error:
            return StoreCheck(reachable=True, problems=[("table", error.reason)])
        self._column_types = described
        problems: Problems = []

        def expect(key: str, column: str, ok: Callable[[Column], bool], wanted: str) -> None:
            found = described.get(column)
            if found is None:
                problems.append((key, f"no column {column} in {self.table_name}"))
            elif not ok(found):
                problems.append((key, f"{column} is {found.type_name}; the store needs {wanted}"))

        expect("key", self.key_name, lambda c: c.is_text, "a text column")
        expect("version", self.version_name, lambda c: c.type_name in ("int2", "int4", "int8"), "an integer column")
        for key, column in (("archived", self.archived_name), ("deleted", self.deleted_name)):
            if column is not None:
                expect(key, column, lambda c: c.type_name in ("timestamp", "timestamptz"), "a timestamp column")
        catalogue = RECORD_TYPES[record_type]
        for name, column in self.columns.items():
            kind = catalogue.field(name).kind
            expect(f"fields.{name}", column, partial(compatible, kind), _EXPECTED[kind])
        found = [f"table {self.table_name}: {len(described)} columns, {len(self.columns)} mapped"]
        if problems:
            return StoreCheck(reachable=True, found=found, problems=problems)
        try:
            query = sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT 1").format(
                self._select(self._specs(None)), self.table, self.key
            )
            rows = self._rows(query, [])
        except StoreUnavailable as error:
            return StoreCheck(reachable=True, found=found, problems=[("table", error.reason)])
        if rows:
            state = self._state(self._specs(None), rows[0])
            found.append(f"read {state.ref.record_id} at version {state.version}")
        else:
            found.append("the table is empty")
        return StoreCheck(reachable=True, found=found)


class _Refused(Exception):
    """A compare-and-set inside `restore_many` changed no row (rolls its transaction back)."""

    def __init__(self, ref: RecordRef, expected_version: int) -> None:
        super().__init__(str(ref))
        self.ref = ref
        self.expected_version = expected_version
