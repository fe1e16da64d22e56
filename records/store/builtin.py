"""The built-in record store: one Django model per record type (Customer, Order, Ticket).

The only module that reaches the built-in record models. Reads and writes of a single record are
plain SQL statements built once per kind of database, so the apply path can send them with its own
statements in one round trip (see `core.roundtrip`).
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.roundtrip import Rows, Statement, built_once, run_together
from core.updates import update_rows
from records.catalogue import RECORD_TYPES, FieldSpec, Kind, RecordType
from records.models import Customer, Order, Record, Ticket
from records.store.connectors import ACTIONS, Problems, StoreCheck
from records.store.protocol import MovedReference, RecordNotFound, RecordRef, RecordState, Snapshot, VersionMismatch

BuiltinModel = type[Customer] | type[Order] | type[Ticket]

MODELS: dict[str, BuiltinModel] = {
    "customer": Customer,
    "order": Order,
    "ticket": Ticket,
}

# The primary key of a record a reference names, by (record type, record id).
Referred = dict[tuple[str, str], int]

# Ids per `IN (...)` list, well inside every database's limit on parameters.
CHUNK = 1000


def _model(record_type: str) -> BuiltinModel:
    try:
        return MODELS[record_type]
    except KeyError:
        raise RecordNotFound(f"unknown record type '{record_type}'") from None


def _plain_decimal(value: Any) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def _chunks(ids: Iterable[str], size: int) -> Iterable[list[str]]:
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


@dataclass(frozen=True)
class BuiltinFetch:
    """A record read as one statement, for sending along with others (a `FetchQuery`)."""

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
                value = _plain_decimal(value)
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
class BuiltinWrite:
    """A record write as one statement, for sending along with others (a `WriteQuery`)."""

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
        return _plain_decimal(value)
    if spec.kind == Kind.TAGS:
        return list(value)
    return value


class DjangoRecordStore:
    """The built-in store: one Django model per record type, in the default database."""

    in_default_database = True

    # As a connector (`connector: builtin` in a stores file) ------------------------------------

    @classmethod
    def validate(cls, settings: Mapping[str, Any], fields: Mapping[str, str], *, record_type: str) -> Problems:
        """The built-in store takes no settings and maps no fields: it holds every catalogue field."""
        problems = [(key, "the built-in store takes no settings") for key in settings]
        if fields:
            problems.append(("fields", "the built-in store holds every catalogue field under its own name"))
        return problems

    @classmethod
    def from_binding(
        cls,
        *,
        record_type: str,
        settings: Mapping[str, Any],
        fields: Mapping[str, str],
        side_effects: Mapping[str, str],
    ) -> "DjangoRecordStore":
        return cls()

    def supports(self, action: str) -> bool:
        return action in ACTIONS

    def check(self, record_type: str) -> StoreCheck:
        """The built-in tables are Countersign's own: always there, every field in place."""
        model = _model(record_type)
        count = model.objects.count()
        first = model.objects.order_by("pk").values_list("record_id", "version").first()
        found = [f"built-in table {model._meta.db_table}: {count} records"]
        if first is not None:
            found.append(f"read {first[0]} at version {first[1]}")
        return StoreCheck(reachable=True, found=found)

    def _queryset(self, record_type: str, *, lock: bool) -> models.QuerySet:
        queryset: models.QuerySet = _model(record_type).objects.all()
        references = [spec.name for spec in RECORD_TYPES[record_type].fields if spec.kind == Kind.REF]
        if references:
            queryset = queryset.select_related(*references)
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        return queryset

    def _get(self, ref: RecordRef, *, lock: bool = False) -> Record:
        try:
            return self._queryset(ref.record_type, lock=lock).get(record_id=ref.record_id)
        except _model(ref.record_type).DoesNotExist:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}'") from None

    def _state(self, ref: RecordRef, record: Record) -> RecordState:
        record_type = RECORD_TYPES[ref.record_type]
        return RecordState(
            ref=ref,
            version=record.version,
            values={name: _plain(record_type, record, name) for name in record_type.field_names},
            title=str(getattr(record, record_type.title_field)),
            archived=record.archived_at is not None,
            deleted=record.deleted_at is not None,
        )

    def _snapshot_of(self, ref: RecordRef, record: Record) -> Snapshot:
        return {
            "values": self._state(ref, record).values,
            "version": record.version,
            "archived_at": record.archived_at.isoformat() if record.archived_at else None,
            "deleted_at": record.deleted_at.isoformat() if record.deleted_at else None,
        }

    # Reading ------------------------------------------------------------------------------------

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        """One plain query (a join per reference field); with `lock`, `SELECT ... FOR UPDATE`."""
        query = self.fetch_query(ref, fields, lock=lock)
        return query.state(run_together([query.statement])[0])

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> BuiltinFetch:
        model = _model(ref.record_type)
        names = tuple(RECORD_TYPES[ref.record_type].field_names if fields is None else fields)
        sql, specs, by_name = built_once(
            ("record fetch", ref.record_type, names, lock), lambda: self._fetch_sql(model, ref.record_type, names, lock)
        )
        return BuiltinFetch(Statement(sql, [ref.record_id], prepared=True), ref, model, specs, by_name)

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
                target = quote(_model(spec.ref_type)._meta.db_table)
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
        """One query of plain columns per thousand ids."""
        model = _model(record_type)
        spec = RECORD_TYPES[record_type]
        names = spec.field_names if fields is None else fields
        columns = {name: f"{name}__record_id" if spec.field(name).kind == Kind.REF else name for name in names}
        title = spec.title_field
        found = {}
        for chunk in _chunks(record_ids, CHUNK):
            rows = model.objects.filter(record_id__in=chunk).values(
                "record_id", "version", "archived_at", "deleted_at", title, *columns.values()
            )
            for row in rows:
                values = {}
                for name, column in columns.items():
                    kind = spec.field(name).kind
                    value = row[column]
                    if kind == Kind.DECIMAL:
                        value = _plain_decimal(value)
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

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        return self._snapshot_of(ref, self._get(ref, lock=lock))

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        """One query per 500 ids; with `lock`, rows are locked in primary-key order."""
        found: dict[str, Snapshot] = {}
        for chunk in _chunks(record_ids, 500):
            queryset = self._queryset(record_type, lock=lock).filter(record_id__in=chunk)
            for record in queryset.order_by("pk"):
                found[record.record_id] = self._snapshot_of(RecordRef(record_type, record.record_id), record)
        return found

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        """In creation order."""
        rows = _model(record_type).objects.filter(**{f"{field}__record_id": target_id}).order_by("pk")
        return list(rows.values_list("record_id", flat=True))

    # Writing ------------------------------------------------------------------------------------

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        """One `UPDATE ... WHERE version = expected RETURNING version`: the row is locked, checked and
        written in a single statement, without reading it first."""
        query = self.write_query(ref, values, expected_version)
        return query.state(run_together([query.statement])[0])

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> BuiltinWrite:
        model = _model(ref.record_type)
        sql, targets = built_once(
            ("record write", ref.record_type, tuple(values)), lambda: self._write_sql(model, ref.record_type, values)
        )
        params: list[Any] = []
        written: dict[str, Any] = {}
        for (name, spec, column), value in zip(targets, values.values(), strict=True):
            if spec.kind == Kind.REF:
                target = _model(spec.ref_type).objects.filter(record_id=value).values_list("pk", flat=True).first()
                if target is None:
                    raise RecordNotFound(f"no {spec.ref_type} '{value}' for {name}")
                params.append(target)
                written[name] = value
            elif spec.kind == Kind.DECIMAL:
                params.append(column.get_db_prep_save(Decimal(value), connection))
                written[name] = _plain_decimal(value)
            else:
                params.append(column.get_db_prep_save(value, connection))
                written[name] = list(value) if spec.kind == Kind.TAGS else value
        params += [timezone.now(), ref.record_id, expected_version]
        return BuiltinWrite(Statement(sql, params, prepared=True), ref, model, written, expected_version)

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
        return self._state(ref, record)

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        """One record at a time, in creation order: lock it, then write it as `write` does."""
        moved = []
        for record_id in self.referring(record_type, field, from_id):
            ref = RecordRef(record_type, record_id)
            before = self.fetch(ref, [field], lock=True)
            after = self.write(ref, {field: to_id}, expected_version=before.version)
            moved.append(MovedReference(ref, field, before.version, after.version))
        return moved

    def _assign(self, record_type: RecordType, record: Record, values: dict[str, Any], pks: Referred) -> None:
        """Set plain `values` on a model instance; `pks` holds the primary keys of the records referred to."""
        for name, value in values.items():
            spec = record_type.field(name)
            if spec.kind == Kind.REF:
                if (spec.ref_type, value) not in pks:
                    raise RecordNotFound(f"no {spec.ref_type} '{value}' for {name}")
                setattr(record, f"{name}_id", pks[spec.ref_type, value])
            elif spec.kind == Kind.DECIMAL:
                setattr(record, name, Decimal(value))
            else:
                setattr(record, name, value)

    def _referred(self, record_type: RecordType, values: Iterable[dict[str, Any]]) -> Referred:
        """The primary keys of every record the reference fields among `values` name, one query per type."""
        wanted: dict[str, set[str]] = {}
        for each in values:
            for name, value in each.items():
                spec = record_type.field(name)
                if spec.kind == Kind.REF:
                    wanted.setdefault(spec.ref_type, set()).add(value)
        return {
            (ref_type, record_id): pk
            for ref_type, record_ids in wanted.items()
            for record_id, pk in _model(ref_type)
            .objects.filter(record_id__in=record_ids)
            .values_list("record_id", "pk")
        }

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        """One locking read and one bulk update per set of fields; rows locked in primary-key order."""
        model = _model(record_type)
        spec = RECORD_TYPES[record_type]
        ids = sorted(record_id for record_id, _, _ in items)
        records = {
            record.record_id: record
            for record in model.objects.select_for_update().filter(record_id__in=ids).order_by("pk")
        }
        pks = self._referred(spec, (snapshot["values"] for _, snapshot, _ in items))
        now = timezone.now()
        groups: dict[tuple[str, ...], list[Record]] = {}
        for record_id, snapshot, expected_version in items:
            record = records.get(record_id)
            if record is None:
                raise RecordNotFound(f"no {record_type} '{record_id}'")
            if record.version != expected_version:
                raise VersionMismatch(RecordRef(record_type, record_id), expected_version, record.version)
            self._assign(spec, record, snapshot["values"], pks)
            record.archived_at = parse_datetime(snapshot["archived_at"]) if snapshot.get("archived_at") else None
            record.deleted_at = parse_datetime(snapshot["deleted_at"]) if snapshot.get("deleted_at") else None
            record.version = snapshot["version"]
            record.updated_at = now
            groups.setdefault(tuple(sorted(snapshot["values"])), []).append(record)
        for names, group in groups.items():
            update_rows(group, [*names, "archived_at", "deleted_at", "version", "updated_at"])

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """One insert per thousand records."""
        model = _model(record_type)
        spec = RECORD_TYPES[record_type]
        pks = self._referred(spec, (values for _, values in records))
        created: list[Any] = []
        for record_id, values in records:
            record = model(record_id=record_id)
            self._assign(spec, record, values, pks)
            created.append(record)
        model.objects.bulk_create(created, batch_size=CHUNK)
