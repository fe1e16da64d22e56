"""What a record store is: the values every store speaks, and the `RecordStore` protocol.

Everything above `records.store` reaches records only through a `RecordStore`, so a system of record
other than the built-in models (an outside CRM, another database) is one more implementation bound
to a record type (see `records.store.registry`). Values cross this boundary in the catalogue's plain
form (`records.catalogue`): text, bool, a list of text, a decimal as a string ("12.50"), a reference
as the id staff use ("CUS-10432").

A record's `version` is an integer that every write moves from v to v + 1; writes are
compare-and-set on it, and undo counts on each write adding exactly one.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.roundtrip import Rows, Statement


@dataclass(frozen=True)
class RecordRef:
    record_type: str
    record_id: str

    def __str__(self) -> str:
        return f"{self.record_type}:{self.record_id}"


@dataclass
class RecordState:
    """A record as the store holds it: plain values, its version, and whether it is hidden."""

    ref: RecordRef
    version: int
    values: dict[str, Any]
    title: str = ""
    archived: bool = False
    deleted: bool = False


class RecordNotFound(LookupError):
    pass


class VersionMismatch(Exception):
    def __init__(self, ref: RecordRef, expected: int, actual: int) -> None:
        super().__init__(f"{ref} is at version {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


class StoreUnavailable(Exception):
    """The store could not be reached, or did not answer in time. For a write, whether it landed is
    unknown: the caller keeps the work and finds out later by reading the record again."""

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"{store} is unreachable: {reason}")
        self.store = store
        self.reason = reason


class NotSupported(Exception):
    """The store cannot carry out this action as it is configured (an archive without an archive
    column, a merge that would move rows of a store that cannot move them). Nothing was written."""


Snapshot = dict[str, Any]
"""Everything needed to put a record back exactly, as JSON (it is kept in a Change's merge payload):
`values` (plain, every field, or for `restore_many` the fields to set), `version`, and `archived_at`
and `deleted_at` (ISO 8601 text, or None while the record is not hidden that way)."""


@dataclass(frozen=True)
class MovedReference:
    """A record whose reference `field` a merge pointed at the survivor, with its versions around the move."""

    ref: RecordRef
    field: str
    version_before: int
    version_after: int


class FetchQuery(Protocol):
    """A `fetch` as one statement on the default database, for the caller to send with its own."""

    @property
    def statement(self) -> Statement: ...

    def state(self, rows: Rows) -> RecordState:
        """The record from the statement's rows; RecordNotFound when they hold none."""
        ...


class WriteQuery(Protocol):
    """A `write` as one statement on the default database, for the caller to send with its own."""

    @property
    def statement(self) -> Statement: ...

    @property
    def written(self) -> dict[str, Any]:
        """The values the statement writes, in plain form (what `write` would answer)."""
        ...

    def state(self, rows: Rows) -> RecordState:
        """The record as written; VersionMismatch or RecordNotFound when the statement changed nothing."""
        ...


class RecordStore(Protocol):
    """The system of record for the record types bound to it: every read and write of a record.

    Methods taking a `record_type` are only called with a type bound to this store. Writes are called
    inside the caller's database transaction, once everything that could refuse them has been
    checked. The built-in store's writes roll back with that transaction; a store that lives elsewhere
    cannot, and relies on each write being one compare-and-set on the version.
    """

    in_default_database: bool
    """True when the records live in Countersign's own database, so a write rolls back with the
    caller's transaction; False for a system of record elsewhere, whose writes cannot."""

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        """The record's plain values for `fields` (every field when None, none for `[]`), its version,
        title and visibility; hidden records are found. With `lock`, no other writer may change the
        record until the caller's transaction ends. Raises RecordNotFound."""
        ...

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        """The records among `record_ids` that exist, by id, as `fetch` reads them, without locks.
        Ids that do not exist are left out; this never raises RecordNotFound. Callers pass up to a few
        thousand ids at once and expect a few queries, not one per id."""
        ...

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> FetchQuery | None:
        """`fetch` as a statement the caller sends with its own in one round trip (the apply path
        reads the proposal, the record and the stop switches together), or None when the store
        does not live in the default database; the caller then calls `fetch`."""
        ...

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        """Set `values` (plain, already cleaned by the catalogue; any subset of the fields) if the
        record is still at `expected_version`, moving it to `expected_version + 1`. Checking and
        writing are one step: nothing is written on VersionMismatch. Raises RecordNotFound when the
        record, or a record a reference names, does not exist. Answers the written values and the
        new version."""
        ...

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> WriteQuery | None:
        """`write` as a statement the caller sends with its own in one round trip, or None when the
        store does not live in the default database; the caller then calls `write`."""
        ...

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        """Hide the record (archive it, delete it softly) or bring it back, compare-and-set like
        `write`. A record already hidden keeps the moment it was first hidden. Hidden records are
        kept whole: `restore_many` can always bring them back. Raises RecordNotFound, VersionMismatch."""
        ...

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        """Everything needed to put the record back exactly (see `Snapshot`); with `lock`, locked as
        `fetch` locks. Raises RecordNotFound."""
        ...

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        """Snapshots of the records among `record_ids` that exist, by id. With `lock`, they are locked
        in one fixed order, so two callers locking overlapping sets wait instead of deadlocking."""
        ...

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        """For each (record_id, snapshot, expected_version): if the record is still at
        `expected_version`, set the snapshot's `values`, `archived_at` and `deleted_at`, and move it to
        the snapshot's `version` (the caller counts one per undo it folds in). Raises RecordNotFound or
        VersionMismatch; the caller's transaction is then rolled back, so nothing is half restored."""
        ...

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        """The ids of `record_type` records whose reference `field` holds `target_id`, hidden ones
        included, in a stable order (what a merge of `target_id` would move)."""
        ...

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        """Point `field` of every `record_type` record that refers to `from_id` at `to_id` (a merge):
        each locked and written as `write` does, so each moves up one version. Answers each record
        moved, in the order moved; none when nothing refers to `from_id`."""
        ...

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """New records at version 1, each (record_id, plain values); fields left out take the store's
        defaults. The caller checks first, with `fetch_many`, that the ids are new and that the
        records its references name exist; a store still refuses a missing reference with
        RecordNotFound."""
        ...
