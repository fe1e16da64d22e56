"""The record-store interface, and the built-in implementation over Django models.

Everything above this module reads and writes records only through a `RecordStore`, so an
external CRM reached over HTTP can stand in for the built-in models.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from django.db import connection, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.roundtrip import Rows, Statement, built_once, run_together
from core.updates import update_rows
from records.catalogue import RECORD_TYPES, FieldSpec, Kind, RecordType
from records.models import Customer, Order, Record, Ticket


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
    extra: dict[str, Any] = field(default_factory=dict)


class RecordNotFound(LookupError):
    pass


class VersionMismatch(Exception):
    def __init__(self, ref: RecordRef, expected: int, actual: int) -> None:
        super().__init__(f"{ref} is at version {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


class RecordStore(Protocol):
    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState: ...

    def fetch_refs(self, refs: Iterable[RecordRef]) -> dict[RecordRef, RecordState]: ...

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState: ...

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> dict[str, Any]: ...

    def restore(self, ref: RecordRef, snapshot: dict[str, Any], expected_version: int) -> RecordState: ...

    def exists(self, ref: RecordRef) -> bool: ...

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]: ...

    def snapshot_many(self, refs: Iterable[RecordRef], *, lock: bool = False) -> dict[RecordRef, dict[str, Any]]: ...

    def restore_many(self, items: Sequence[tuple[RecordRef, dict[str, Any], int]]) -> None: ...


MODELS: dict[str, type[Customer] | type[Order] | type[Ticket]] = {
    "customer": Customer,
    "order": Order,
    "ticket": Ticket,
}


@dataclass(frozen=True)
class FetchQuery:
    """A record read as one statement, for sending along with others (see `core.roundtrip`)."""

    statement: Statement
    ref: RecordRef
    model: type[Record]
    specs: list[FieldSpec]
    columns: dict[str, Any]

    def state(self, rows: Rows) -> RecordState:
        """The record's state from the statement's rows; RecordNotFound when it gave none."""
        if not rows:
            raise RecordNotFound(f"no {self.ref.record_type} '{self.ref.record_id}'")
        version, archived_at, deleted_at, title, *raw = rows[0]
        values = {}
        table = self.model._meta.db_table
        for spec, value in zip(self.specs, raw, strict=True):
            if spec.kind != Kind.REF:
                # What the ORM would do to the column's raw value (JSON text, SQLite's 0/1 booleans, ...).
                field = self.columns[spec.name]
                expression = field.get_col(table)
                for converter in [*connection.ops.get_db_converters(expression), *field.get_db_converters(connection)]:
                    value = converter(value, expression, connection)
            if spec.kind == Kind.DECIMAL:
                value = str(Decimal(value).quantize(Decimal("0.01")))
            elif spec.kind == Kind.TAGS:
                value = list(value)
            values[spec.name] = value
        return RecordState(
            ref=self.ref,
            version=version,
            values=values,
            title=str(title),
            archived=archived_at is not None,
            deleted=deleted_at is not None,
        )


@dataclass(frozen=True)
class WriteQuery:
    """A record write as one statement, for sending along with others (see `core.roundtrip`)."""

    statement: Statement
    ref: RecordRef
    model: type[Record]
    written: dict[str, Any]
    expected_version: int

    def state(self, rows: Rows) -> RecordState:
        """The record as written; VersionMismatch (or RecordNotFound) when the statement changed no row."""
        if not rows:
            found = (
                self.model._default_manager.filter(record_id=self.ref.record_id)
                .values_list("version", flat=True)
                .first()
            )
            if found is None:
                raise RecordNotFound(f"no {self.ref.record_type} '{self.ref.record_id}'")
            raise VersionMismatch(self.ref, self.expected_version, found)
        return RecordState(ref=self.ref, version=rows[0][0], values=self.written)


def _plain(record_type: RecordType, record: Record, name: str) -> Any:
    spec = record_type.field(name)
    if spec.kind == Kind.REF:
        return getattr(record, name).record_id
    value = getattr(record, name)
    if spec.kind == Kind.DECIMAL:
        return str(Decimal(value).quantize(Decimal("0.01")))
    if spec.kind == Kind.TAGS:
        return list(value)
    return value


class DjangoRecordStore:
    """The built-in store: one Django model per record type."""

    def _model(self, ref: RecordRef) -> type[Customer] | type[Order] | type[Ticket]:
        try:
            return MODELS[ref.record_type]
        except KeyError:
            raise RecordNotFound(f"unknown record type '{ref.record_type}'") from None

    def _queryset(self, ref: RecordRef, *, lock: bool) -> models.QuerySet:
        model = self._model(ref)
        queryset: models.QuerySet = model.objects.all()
        references = [spec.name for spec in RECORD_TYPES[ref.record_type].fields if spec.kind == Kind.REF]
        if references:
            queryset = queryset.select_related(*references)
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        return queryset

    def _get(self, ref: RecordRef, *, lock: bool = False) -> Record:
        try:
            return self._queryset(ref, lock=lock).get(record_id=ref.record_id)
        except self._model(ref).DoesNotExist:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'") from None

    def _state(self, ref: RecordRef, record: Record, fields: list[str] | None) -> RecordState:
        record_type = RECORD_TYPES[ref.record_type]
        names = record_type.field_names if fields is None else fields
        return RecordState(
            ref=ref,
            version=record.version,
            values={name: _plain(record_type, record, name) for name in names},
            title=str(getattr(record, record_type.title_field)),
            archived=record.archived_at is not None,
            deleted=record.deleted_at is not None,
        )

    def exists(self, ref: RecordRef) -> bool:
        return self._model(ref).objects.filter(record_id=ref.record_id).exists()

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        """The record's plain values (all fields, or `fields`), read in one plain query; with `lock`,
        its row is locked until the transaction ends. Reference fields come back as record ids."""
        query = self.fetch_query(ref, fields, lock=lock)
        return query.state(run_together([query.statement])[0])

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> "FetchQuery":
        """`fetch` as a statement to send along with others, and the reading of its rows."""
        model = self._model(ref)
        names = tuple(RECORD_TYPES[ref.record_type].field_names if fields is None else fields)
        sql, specs, by_name = built_once(
            ("record fetch", ref.record_type, names, lock), lambda: self._fetch_sql(model, ref.record_type, names, lock)
        )
        return FetchQuery(Statement(sql, [ref.record_id], prepared=True), ref, model, specs, by_name)

    def _fetch_sql(
        self, model: type[Record], type_name: str, names: tuple[str, ...], lock: bool
    ) -> tuple[str, list[FieldSpec], dict[str, Any]]:
        record_type = RECORD_TYPES[type_name]
        specs = [record_type.field(name) for name in names]
        by_name = {field.name: field for field in model._meta.concrete_fields}
        quote = connection.ops.quote_name
        columns = [f"t.{quote(name)}" for name in ("version", "archived_at", "deleted_at", record_type.title_field)]
        joins = []
        for number, spec in enumerate(specs):
            column = quote(str(by_name[spec.name].column))
            if spec.kind == Kind.REF:
                target = quote(MODELS[spec.ref_type]._meta.db_table)
                joins.append(f"LEFT JOIN {target} r{number} ON r{number}.{quote('id')} = t.{column}")
                columns.append(f"r{number}.{quote('record_id')}")
            else:
                columns.append(f"t.{column}")
        lock_clause = " FOR UPDATE OF t" if lock and connection.features.has_select_for_update_of else ""
        # Built only from the models' own table and column names; the id is a parameter.
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(model._meta.db_table)} t {' '.join(joins)} "  # noqa: S608
            f"WHERE t.{quote('record_id')} = %s{lock_clause}"
        )
        return sql, specs, by_name

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        """The records of one type among `record_ids` that exist, by id, read in one query of plain columns."""
        model = self._model(RecordRef(record_type, ""))
        spec = RECORD_TYPES[record_type]
        names = spec.field_names if fields is None else fields
        columns = {name: f"{name}__record_id" if spec.field(name).kind == Kind.REF else name for name in names}
        title = spec.title_field
        rows = model.objects.filter(record_id__in=set(record_ids)).values(
            "record_id", "version", "archived_at", "deleted_at", title, *columns.values()
        )
        found = {}
        for row in rows:
            values = {}
            for name, column in columns.items():
                kind = spec.field(name).kind
                value = row[column]
                if kind == Kind.DECIMAL:
                    value = str(Decimal(value).quantize(Decimal("0.01")))
                elif kind == Kind.TAGS:
                    value = list(value)
                values[name] = value
            found[row["record_id"]] = RecordState(
                ref=RecordRef(record_type, row["record_id"]),
                version=row["version"],
                values=values,
                title=str(row[title]),
                archived=row["archived_at"] is not None,
                deleted=row["deleted_at"] is not None,
            )
        return found

    def fetch_refs(self, refs: Iterable[RecordRef]) -> dict[RecordRef, RecordState]:
        """Several records with every field, one query per record type and thousand ids.

        Records that do not exist (or of an unknown type) are missing from the answer.
        """
        wanted: dict[str, set[str]] = {}
        for ref in refs:
            if ref.record_type in MODELS:
                wanted.setdefault(ref.record_type, set()).add(ref.record_id)
        found: dict[RecordRef, RecordState] = {}
        for record_type, record_ids in wanted.items():
            ordered = sorted(record_ids)
            for start in range(0, len(ordered), 1000):
                chunk = ordered[start : start + 1000]
                queryset = self._queryset(RecordRef(record_type, ""), lock=False).filter(record_id__in=chunk)
                for record in queryset:
                    ref = RecordRef(record_type, record.record_id)
                    found[ref] = self._state(ref, record, None)
        return found

    def _assign(
        self, ref: RecordRef, record: Record, values: dict[str, Any], *, customers: dict[str, Customer] | None = None
    ) -> None:
        record_type = RECORD_TYPES[ref.record_type]
        for name, value in values.items():
            spec = record_type.field(name)
            if spec.kind == Kind.REF:
                target = customers.get(value) if customers is not None else None
                if target is None:
                    try:
                        target = Customer.objects.get(record_id=value)
                    except Customer.DoesNotExist:
                        raise RecordNotFound(f"no {spec.ref_type} '{value}' for {name}") from None
                setattr(record, name, target)
            elif spec.kind == Kind.DECIMAL:
                setattr(record, name, Decimal(value))
            else:
                setattr(record, name, value)

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        """Set `values` (plain form) if the record is still at `expected_version`; bump the version.

        One `UPDATE ... WHERE version = expected RETURNING version`: the row is locked, checked and
        written in a single statement, without reading it first.
        """
        query = self.write_query(ref, values, expected_version)
        return query.state(run_together([query.statement])[0])

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> "WriteQuery":
        """`write` as a statement to send along with others, and the reading of its answer."""
        model = self._model(ref)
        sql, targets = built_once(
            ("record write", ref.record_type, tuple(values)), lambda: self._write_sql(model, ref.record_type, values)
        )
        params: list[Any] = []
        written: dict[str, Any] = {}
        for (name, spec, column), value in zip(targets, values.values(), strict=True):
            if spec.kind == Kind.REF:
                target = Customer.objects.filter(record_id=value).values_list("pk", flat=True).first()
                if target is None:
                    raise RecordNotFound(f"no {spec.ref_type} '{value}' for {name}")
                params.append(target)
                written[name] = value
            elif spec.kind == Kind.DECIMAL:
                params.append(column.get_db_prep_save(Decimal(value), connection))
                written[name] = str(Decimal(value).quantize(Decimal("0.01")))
            else:
                params.append(column.get_db_prep_save(value, connection))
                written[name] = list(value) if spec.kind == Kind.TAGS else value
        params += [timezone.now(), ref.record_id, expected_version]
        return WriteQuery(Statement(sql, params, prepared=True), ref, model, written, expected_version)

    def _write_sql(
        self, model: type[Record], type_name: str, names: Iterable[str]
    ) -> tuple[str, list[tuple[str, FieldSpec, Any]]]:
        record_type = RECORD_TYPES[type_name]
        quote = connection.ops.quote_name
        fields = {field.name: field for field in model._meta.concrete_fields}
        targets = [(name, record_type.field(name), fields[name]) for name in names]
        assignments = ", ".join(f"{quote(str(field.column))} = %s" for _, _, field in targets)
        # Built only from the model's own table and column names; every value is a parameter.
        sql = (
            f"UPDATE {quote(model._meta.db_table)} SET {assignments}, "  # noqa: S608
            f"{quote('version')} = {quote('version')} + 1, {quote('updated_at')} = %s "
            f"WHERE {quote('record_id')} = %s AND {quote('version')} = %s RETURNING {quote('version')}"
        )
        return sql, targets

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> dict[str, Any]:
        """Everything needed to put the record back exactly: every field, version and visibility."""
        record = self._get(ref, lock=lock)
        state = self._state(ref, record, None)
        return {
            "values": state.values,
            "version": record.version,
            "archived_at": record.archived_at.isoformat() if record.archived_at else None,
            "deleted_at": record.deleted_at.isoformat() if record.deleted_at else None,
        }

    def restore(self, ref: RecordRef, snapshot: dict[str, Any], expected_version: int) -> RecordState:
        """Put back the values and visibility of `snapshot`, as a new version."""
        record = self._get(ref, lock=True)
        if record.version != expected_version:
            raise VersionMismatch(ref, expected_version, record.version)
        self._assign(ref, record, snapshot["values"])
        record.archived_at = parse_datetime(snapshot["archived_at"]) if snapshot.get("archived_at") else None
        record.deleted_at = parse_datetime(snapshot["deleted_at"]) if snapshot.get("deleted_at") else None
        record.version += 1
        record.updated_at = timezone.now()
        record.save()
        return self._state(ref, record, None)

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        record = self._get(ref, lock=True)
        if record.version != expected_version:
            raise VersionMismatch(ref, expected_version, record.version)
        now = timezone.now()
        record.archived_at = (record.archived_at or now) if archived else None
        record.deleted_at = (record.deleted_at or now) if deleted else None
        record.version += 1
        record.updated_at = now
        record.save()
        return self._state(ref, record, None)

    def referring(self, ref: RecordRef) -> list[tuple[RecordRef, str]]:
        """Every record that refers to `ref` through a reference field, with that field's name."""
        found: list[tuple[RecordRef, str]] = []
        for record_type in RECORD_TYPES.values():
            for spec in record_type.fields:
                if spec.kind != Kind.REF or spec.ref_type != ref.record_type:
                    continue
                model = MODELS[record_type.name]
                rows = model.objects.filter(**{f"{spec.name}__record_id": ref.record_id}).order_by("pk")
                found.extend(
                    (RecordRef(record_type.name, record_id), spec.name)
                    for record_id in rows.values_list("record_id", flat=True)
                )
        return found

    def _snapshot_of(self, ref: RecordRef, record: Record) -> dict[str, Any]:
        return {
            "values": self._state(ref, record, None).values,
            "version": record.version,
            "archived_at": record.archived_at.isoformat() if record.archived_at else None,
            "deleted_at": record.deleted_at.isoformat() if record.deleted_at else None,
        }

    def snapshot_many(self, refs: Iterable[RecordRef], *, lock: bool = False) -> dict[RecordRef, dict[str, Any]]:
        """Snapshots of several records, one query per record type. Records that do not exist are left out.

        With `lock`, rows are locked in one order (type, then primary key), so two callers locking
        overlapping sets wait for each other instead of deadlocking.
        """
        wanted: dict[str, set[str]] = {}
        for ref in refs:
            wanted.setdefault(ref.record_type, set()).add(ref.record_id)
        found: dict[RecordRef, dict[str, Any]] = {}
        for record_type in sorted(wanted):
            probe = RecordRef(record_type, "")
            ids = sorted(wanted[record_type])
            for start in range(0, len(ids), 500):
                queryset = self._queryset(probe, lock=lock).filter(record_id__in=ids[start : start + 500])
                for record in queryset.order_by("pk"):
                    ref = RecordRef(record_type, record.record_id)
                    found[ref] = self._snapshot_of(ref, record)
        return found

    def restore_many(self, items: Sequence[tuple[RecordRef, dict[str, Any], int]]) -> None:
        """Put each record at its snapshot, if it is still at the expected version.

        Each item is (ref, snapshot, expected_version); the snapshot holds the `values` to set (any
        subset of the fields), `archived_at`, `deleted_at` and the new `version`. One read and one
        bulk update per record type and set of fields. Raises RecordNotFound or VersionMismatch.
        """
        by_type: dict[str, list[tuple[RecordRef, dict[str, Any], int]]] = {}
        for item in items:
            by_type.setdefault(item[0].record_type, []).append(item)
        now = timezone.now()
        for record_type, entries in sorted(by_type.items()):
            model = MODELS[record_type]
            spec = RECORD_TYPES[record_type]
            ids = sorted(ref.record_id for ref, _, _ in entries)
            records = {
                record.record_id: record
                for record in model.objects.select_for_update().filter(record_id__in=ids).order_by("pk")
            }
            references = {
                value
                for _, snapshot, _ in entries
                for name, value in snapshot["values"].items()
                if spec.field(name).kind == Kind.REF
            }
            customers = {c.record_id: c for c in Customer.objects.filter(record_id__in=references)}
            groups: dict[tuple[str, ...], list[Record]] = {}
            for ref, snapshot, expected_version in entries:
                record = records.get(ref.record_id)
                if record is None:
                    raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'")
                if record.version != expected_version:
                    raise VersionMismatch(ref, expected_version, record.version)
                self._assign(ref, record, snapshot["values"], customers=customers)
                record.archived_at = parse_datetime(snapshot["archived_at"]) if snapshot.get("archived_at") else None
                record.deleted_at = parse_datetime(snapshot["deleted_at"]) if snapshot.get("deleted_at") else None
                record.version = snapshot["version"]
                record.updated_at = now
                groups.setdefault(tuple(sorted(snapshot["values"])), []).append(record)
            for names, group in groups.items():
                fields = [*names, "archived_at", "deleted_at", "version", "updated_at"]
                update_rows(group, fields)


def get_store() -> DjangoRecordStore:
    return DjangoRecordStore()
