"""A record store in a table of its own SQLite file: a system of record outside Countersign's database
that the test process and the worker processes it starts all see, for the crash tests.

Each write is one compare-and-set `UPDATE` committed in that file, and counted in its `writes` table,
so a test can tell a write that landed twice from one that landed once. A test holds a write at a
point of its choosing with a gate file (`hold`): before the write is sent, or after it is committed
and before it is answered; the store waits there, says so (`wait_held`), and the test `kill -9`s
the worker while it waits. It serves record types without references (customers).

A worker process reaches it through `tests.helpers.table_store_settings`.
"""

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.utils import timezone

from records.catalogue import RECORD_TYPES
from records.store import (
    MovedReference,
    RecordNotFound,
    RecordRef,
    RecordState,
    RecordStore,
    Snapshot,
    VersionMismatch,
)

BEFORE_WRITE = "before-write"
AFTER_WRITE = "after-write"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    record_type TEXT NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL,
    archived_at TEXT, deleted_at TEXT, PRIMARY KEY (record_type, record_id));
CREATE TABLE IF NOT EXISTS writes (
    n INTEGER PRIMARY KEY AUTOINCREMENT, record_type TEXT NOT NULL, record_id TEXT NOT NULL, version INTEGER NOT NULL);
"""


class TableRecordStore(RecordStore):
    in_default_database = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.gates = self.path.with_name(f"{self.path.stem}-gates")
        self.gates.mkdir(parents=True, exist_ok=True)
        with self._connection() as db:
            db.executescript(_SCHEMA)

    # What the test controls and reads -----------------------------------------------------------

    def hold(self, point: str) -> None:
        """From now on, a write waits at `point` until `let_go`."""
        (self.gates / f"hold-{point}").touch()

    def let_go(self, point: str) -> None:
        (self.gates / f"hold-{point}").unlink(missing_ok=True)
        (self.gates / f"waiting-{point}").unlink(missing_ok=True)

    def wait_held(self, point: str, *, timeout: float) -> None:
        """Until a write waits at `point`."""
        deadline = time.monotonic() + timeout
        while not (self.gates / f"waiting-{point}").exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"no write reached {point} within {timeout}s")
            time.sleep(0.02)

    def writes(self) -> int:
        """How many writes landed."""
        with self._connection() as db:
            return int(db.execute("SELECT count(*) FROM writes").fetchone()[0])

    # The store ------------------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def _gate(self, point: str) -> None:
        if not (self.gates / f"hold-{point}").exists():
            return
        (self.gates / f"waiting-{point}").touch()
        deadline = time.monotonic() + 120
        while (self.gates / f"hold-{point}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _rows(self, record_type: str, record_ids: Iterable[str]) -> dict[str, tuple[int, dict, str | None, str | None]]:
        ids = sorted(set(record_ids))
        if not ids:
            return {}
        with self._connection() as db:
            found = db.execute(
                "SELECT record_id, version, body, archived_at, deleted_at FROM records "  # noqa: S608
                f"WHERE record_type = ? AND record_id IN ({', '.join('?' * len(ids))})",
                [record_type, *ids],
            ).fetchall()
        return {row[0]: (row[1], json.loads(row[2]), row[3], row[4]) for row in found}

    def _state(
        self, ref: RecordRef, row: tuple[int, dict, str | None, str | None], fields: list[str] | None
    ) -> RecordState:
        version, body, archived_at, deleted_at = row
        record_type = RECORD_TYPES[ref.record_type]
        names = record_type.field_names if fields is None else fields
        return RecordState(
            ref=ref,
            version=version,
            values={name: body.get(name) for name in names},
            title=str(body.get(record_type.title_field, "")),
            archived=archived_at is not None,
            deleted=deleted_at is not None,
        )

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        row = self._rows(ref.record_type, [ref.record_id]).get(ref.record_id)
        if row is None:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
        return self._state(ref, row, fields)

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        rows = self._rows(record_type, record_ids)
        return {rid: self._state(RecordRef(record_type, rid), row, fields) for rid, row in rows.items()}

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> None:
        return None

    def _compare_and_set(self, ref: RecordRef, expected_version: int, change: dict[str, Any]) -> int:
        """Apply `change` (body values, archived_at, deleted_at, version) at `expected_version`, commit,
        count the write; then wait at the gate after it, if held."""
        self._gate(BEFORE_WRITE)
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT version, body, archived_at, deleted_at FROM records WHERE record_type = ? AND record_id = ?",
                [ref.record_type, ref.record_id],
            ).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
            if row[0] != expected_version:
                db.execute("ROLLBACK")
                raise VersionMismatch(ref, expected_version, row[0])
            body = json.loads(row[1]) | change.get("values", {})
            version = change.get("version", expected_version + 1)
            db.execute(
                "UPDATE records SET version = ?, body = ?, archived_at = ?, deleted_at = ? "
                "WHERE record_type = ? AND record_id = ? AND version = ?",
                [
                    version,
                    json.dumps(body),
                    change.get("archived_at", row[2]),
                    change.get("deleted_at", row[3]),
                    ref.record_type,
                    ref.record_id,
                    expected_version,
                ],
            )
            db.execute(
                "INSERT INTO writes (record_type, record_id, version) VALUES (?, ?, ?)",
                [ref.record_type, ref.record_id, version],
            )
            db.execute("COMMIT")
        self._gate(AFTER_WRITE)
        return int(version)

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        version = self._compare_and_set(ref, expected_version, {"values": values})
        return RecordState(ref=ref, version=version, values=dict(values))

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> None:
        return None

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        snapshot = self.snapshot(ref)
        now = timezone.now().isoformat()
        self._compare_and_set(
            ref,
            expected_version,
            {
                "archived_at": (snapshot["archived_at"] or now) if archived else None,
                "deleted_at": (snapshot["deleted_at"] or now) if deleted else None,
            },
        )
        return self.fetch(ref)

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        found = self.snapshot_many(ref.record_type, [ref.record_id])
        if ref.record_id not in found:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
        return found[ref.record_id]

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        return {
            rid: {"values": body, "version": version, "archived_at": archived_at, "deleted_at": deleted_at}
            for rid, (version, body, archived_at, deleted_at) in self._rows(record_type, record_ids).items()
        }

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        for record_id, snapshot, expected_version in items:
            self._compare_and_set(
                RecordRef(record_type, record_id),
                expected_version,
                {
                    "values": snapshot["values"],
                    "archived_at": snapshot["archived_at"],
                    "deleted_at": snapshot["deleted_at"],
                    "version": snapshot["version"],
                },
            )

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        return []  # it serves record types without references

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        return []

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        with self._connection() as db:
            db.executemany(
                "INSERT INTO records (record_type, record_id, version, body) VALUES (?, ?, 1, ?)",
                [(record_type, record_id, json.dumps(values)) for record_id, values in records],
            )

    def edit_outside(self, ref: RecordRef, values: dict[str, Any]) -> None:
        """Someone changes the record in the system's own screens (not counted as one of our writes)."""
        with self._connection() as db:
            db.execute(
                "UPDATE records SET body = json_patch(body, ?), version = version + 1 "
                "WHERE record_type = ? AND record_id = ?",
                [json.dumps(values), ref.record_type, ref.record_id],
            )
