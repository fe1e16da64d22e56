"""The `bottlecrm` connector: customers as BottleCRM contacts, tickets as its support cases.

BottleCRM (PyPI `django-crm`) runs as its own process with its own database; this store speaks only
its REST API, with a personal access token. Two things BottleCRM lacks shape it:

- **No record ids of ours.** Contacts and cases are named by UUIDs, and BottleCRM has no unique field
  its API can filter on to hold `CUS-…` or `T-…`. The map lives in Countersign's database
  (`ConnectorRecord`), one row per record, written when Countersign creates the record there or a
  person links an existing one (`bottlecrm_link`).
- **No version and no conditional write.** It sends no ETag, ignores `If-Match`, and rewrites the
  whole row on save. The same `ConnectorRecord` row holds the last version Countersign knows and the
  values it last wrote or saw; a read whose values differ is a new version. A write reads, compares
  with the expected version, PATCHes, and reads back. An edit made in BottleCRM between that read
  and the PATCH is not seen by the compare: an edit of another field survives (the PATCH sends only
  the proposal's fields) and shows up as the next version; an edit of the same field is overwritten.
  `docs/record-stores.md` states this window.

Writes are not part of Countersign's transaction. The ledger row is, so a write whose transaction
rolls back (a worker killed after the PATCH) leaves BottleCRM ahead of the ledger: the next read sees
the new values as the next version, which is what recovery looks for.
"""

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from records.catalogue import RECORD_TYPES, Kind
from records.models import ConnectorRecord
from records.store.bottlecrm_shapes import (
    CONNECTOR,
    DEFAULT_TIMEOUT_SECONDS,
    LIST_PAGE,
    READ_ONE_BY_ONE,
    RESOURCES,
    SYSTEM,
    supports,
    timeout_seconds,
    validate,
)
from records.store.connectors import StoreCheck
from records.store.protocol import (
    MovedReference,
    RecordNotFound,
    RecordRef,
    RecordState,
    RecordStore,
    Snapshot,
    StoreUnavailable,
    VersionMismatch,
)


class _Missing(Exception):
    """BottleCRM answered 404 for a record."""


def _fingerprint(values: Mapping[str, Any], archived: bool) -> str:
    canonical = json.dumps({"values": values, "archived": archived}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class BottleCrmStore(RecordStore):
    """Customers or tickets in one BottleCRM, by its base URL and a personal access token."""

    in_default_database = False
    system_label = SYSTEM

    # As a connector (named `bottlecrm` in a stores file) ----------------------------------------

    @classmethod
    def validate(
        cls, settings: Mapping[str, Any], fields: Mapping[str, str], *, record_type: str | None = None
    ) -> list[tuple[str, str]]:
        """Problems with a binding's settings and field map, without connecting."""
        return validate(settings, fields, record_type=record_type)

    @classmethod
    def from_binding(
        cls,
        *,
        record_type: str,
        settings: Mapping[str, Any],
        fields: Mapping[str, str],
        side_effects: Mapping[str, str],
    ) -> "BottleCrmStore":
        """The store for `record_type` from a binding whose placeholders are expanded. Connects to nothing."""
        return cls(
            url=str(settings["url"]),
            token=str(settings["token"]),
            record_type=record_type,
            fields=fields,
            side_effects=side_effects,
            timeout=timeout_seconds(settings.get("timeout")) or DEFAULT_TIMEOUT_SECONDS,
        )

    def supports(self, action: str) -> bool:
        return supports(action)

    def check(self, record_type: str) -> StoreCheck:
        """Reach BottleCRM with the token, read one record, and check that every mapped field is
        there and holds what its catalogue kind can: text, a true/false, a known status or priority."""
        try:
            answer = self._call("GET", f"{self.resource.path}/?limit=1")
        except StoreUnavailable as error:
            key = "token" if "token" in error.reason else "url"
            return StoreCheck(reachable=False, problems=[(key, error.reason)])
        except _Missing:
            return StoreCheck(reachable=False, problems=[("url", f"{self.url} has no BottleCRM API")])
        listed = answer.get(self.resource.list_key)
        if not isinstance(listed, list):
            return StoreCheck(reachable=True, problems=[("url", f"its {self.resource.label} list has no records")])
        found = [f"{SYSTEM} at {self.url}: {self.resource.label}s readable with the token"]
        if not listed:
            found.append(f"no {self.resource.label} yet to read")
            return StoreCheck(reachable=True, found=found)
        record = listed[0]
        found.append(f"read {self.resource.label} {record.get('id')}")
        return StoreCheck(reachable=True, found=found, problems=self._mismatches(record_type, record))

    def _mismatches(self, record_type: str, record: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        spec = RECORD_TYPES[record_type]
        for name, system_name in self.fields.items():
            key = f"fields.{name}"
            whole_name = system_name == "name" and record_type == "customer"
            held = ["first_name", "last_name"] if whole_name else [system_name]
            missing = [part for part in held if part not in record]
            if missing:
                problems.append((key, f"the {self.resource.label} has no field {', '.join(missing)}"))
                continue
            value = record[held[0]]
            kind = spec.field(name).kind
            if kind == Kind.BOOL and not isinstance(value, bool):
                problems.append((key, f"{system_name} holds {value!r}, not true or false"))
            elif kind != Kind.BOOL and value is not None and not isinstance(value, str):
                problems.append((key, f"{system_name} holds {type(value).__name__}, not text"))
            elif system_name in self.resource.enums and value not in self.resource.enums[system_name][1]:
                problems.append((key, f"{system_name} holds {value!r}, which the connector cannot read as {name}"))
        return problems

    def __init__(
        self,
        *,
        url: str,
        token: str,
        record_type: str,
        fields: Mapping[str, str],
        side_effects: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        problems = validate({"url": url, "token": token}, fields, record_type=record_type)
        if problems:
            raise ValueError("; ".join(f"{key}: {reason}" for key, reason in problems))
        self.url = url.rstrip("/")
        self.token = token
        self.record_type = record_type
        self.resource = RESOURCES[record_type]
        self.fields = dict(fields)
        self.side_effects = dict(side_effects or {})
        self.timeout = timeout

    # --- HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is the binding's, http or https
            f"{self.url}/api/{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            if error.code == 404:
                raise _Missing(path) from None
            if error.code in (401, 403):
                raise StoreUnavailable(SYSTEM, f"the token was refused ({error.code})") from None
            if error.code == 400:
                raise StoreUnavailable(SYSTEM, f"it refused the {method} of {path}: {detail}") from None
            raise StoreUnavailable(SYSTEM, f"{method} {path} answered {error.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise StoreUnavailable(SYSTEM, f"{self.url} did not answer ({reason})") from None
        except json.JSONDecodeError:
            raise StoreUnavailable(SYSTEM, f"{method} {path} answered something other than JSON") from None
        if not isinstance(answer, dict):
            raise StoreUnavailable(SYSTEM, f"{method} {path} answered something other than an object")
        return answer

    def _get(self, remote_id: str) -> dict[str, Any]:
        try:
            answer = self._call("GET", f"{self.resource.path}/{remote_id}/")
        except _Missing:
            raise RecordNotFound(f"BottleCRM has no {self.resource.label} {remote_id}") from None
        record = answer.get(self.resource.detail_key)
        if not isinstance(record, dict):
            raise StoreUnavailable(SYSTEM, f"its {self.resource.label} answer has no {self.resource.detail_key}")
        return record

    def _patch(self, remote_id: str, body: Mapping[str, Any]) -> None:
        """Send one PATCH. The only call that changes a record that already exists."""
        try:
            self._call("PATCH", f"{self.resource.path}/{remote_id}/", body)
        except _Missing:
            raise RecordNotFound(f"BottleCRM has no {self.resource.label} {remote_id}") from None

    # --- values ------------------------------------------------------------------------------

    def _plain(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The record's mapped fields in the catalogue's plain form."""
        spec = RECORD_TYPES[self.record_type]
        values: dict[str, Any] = {}
        for name, system_name in self.fields.items():
            kind = spec.field(name).kind
            if system_name == "name" and self.record_type == "customer":
                raw: Any = " ".join(part for part in (record.get("first_name"), record.get("last_name")) if part)
            else:
                raw = record.get(system_name)
            if system_name in self.resource.enums:
                raw = self.resource.enums[system_name][1].get(raw, raw)
            if kind == Kind.BOOL:
                values[name] = bool(raw)
            else:
                values[name] = "" if raw is None else str(raw)
        return values

    def system_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """What to send to BottleCRM for catalogue `values`."""
        body: dict[str, Any] = {}
        for name, value in values.items():
            system_name = self._system_name(name)
            if system_name == "name" and self.record_type == "customer":
                first, _, last = str(value).rpartition(" ")
                body["first_name"], body["last_name"] = (first, last) if first else (last, last)
            elif system_name in self.resource.enums:
                body[system_name] = self.resource.enums[system_name][0].get(value, value)
            else:
                body[system_name] = value
        return body

    def _system_name(self, name: str) -> str:
        try:
            return self.fields[name]
        except KeyError:
            raise ValueError(f"{self.record_type}.{name} is not mapped to a BottleCRM field in this binding") from None

    def _title(self, record: Mapping[str, Any]) -> str:
        if self.record_type == "customer":
            return " ".join(part for part in (record.get("first_name"), record.get("last_name")) if part)
        return str(record.get("name") or "")

    # --- the ledger --------------------------------------------------------------------------

    def _entry(self, ref: RecordRef, *, lock: bool) -> ConnectorRecord:
        rows = ConnectorRecord.objects.filter(system=CONNECTOR, record_type=ref.record_type, record_id=ref.record_id)
        entry = (rows.select_for_update() if lock else rows).first()
        if entry is None:
            raise RecordNotFound(f"no {ref.record_type} '{ref.record_id}' in BottleCRM")
        return entry

    def _observe(self, entry: ConnectorRecord, record: Mapping[str, Any]) -> dict[str, Any]:
        """Bring the ledger up to what BottleCRM holds: values that differ from the last ones known
        are the next version. Answers the plain values read."""
        values = self._plain(record)
        archived = record.get("is_active") is False
        fingerprint = _fingerprint(values, archived)
        if fingerprint != entry.fingerprint:
            entry.version += 1
            entry.values = values
            entry.fingerprint = fingerprint
            if archived and entry.archived_at is None:
                entry.archived_at = timezone.now()
            if not archived:
                entry.archived_at = None
            entry.seen_at = timezone.now()
            entry.save(update_fields=["version", "values", "fingerprint", "archived_at", "seen_at"])
        return values

    def _read(self, ref: RecordRef) -> tuple[ConnectorRecord, dict[str, Any], dict[str, Any]]:
        """The ledger entry, the record as BottleCRM answers it, and its plain values. The entry is
        locked until the caller's transaction ends, since a read may move its version: with or
        without `lock`, no other Countersign writer changes the record meanwhile (BottleCRM's own
        users still can)."""
        entry = self._entry(ref, lock=True)
        record = self._get(entry.remote_id)
        return entry, record, self._observe(entry, record)

    def _state(
        self,
        ref: RecordRef,
        entry: ConnectorRecord,
        record: Mapping[str, Any],
        values: Mapping[str, Any],
        fields: list[str] | None,
    ) -> RecordState:
        names = list(values) if fields is None else [name for name in fields if name in values]
        return RecordState(
            ref=ref,
            version=entry.version,
            values={name: values[name] for name in names},
            title=self._title(record),
            archived=record.get("is_active") is False,
            deleted=False,
        )

    # --- the protocol ------------------------------------------------------------------------

    def fetch(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> RecordState:
        with transaction.atomic():
            entry, record, values = self._read(ref)
            return self._state(ref, entry, record, values, fields)

    def fetch_many(
        self, record_type: str, record_ids: Iterable[str], fields: list[str] | None = None
    ) -> dict[str, RecordState]:
        # BottleCRM's list filters by email, name and phone, not by id: a few records are read one
        # call each; many are read from its list, a page of LIST_PAGE at a time, until all are found.
        ids = list(dict.fromkeys(record_ids))
        entries = {
            entry.remote_id: entry
            for entry in ConnectorRecord.objects.filter(system=CONNECTOR, record_type=record_type, record_id__in=ids)
        }
        records: dict[str, dict[str, Any]] = {}
        if len(entries) > READ_ONE_BY_ONE:
            for record in self.listed(page=LIST_PAGE):
                if str(record.get("id")) in entries:
                    records[str(record["id"])] = record
                    if len(records) == len(entries):
                        break
        found: dict[str, RecordState] = {}
        for remote_id, entry in entries.items():
            ref = RecordRef(record_type, entry.record_id)
            with transaction.atomic():
                try:
                    record = records.get(remote_id) or self._get(remote_id)
                except RecordNotFound:
                    continue
                locked = self._entry(ref, lock=True)
                values = self._observe(locked, record)
                found[entry.record_id] = self._state(ref, locked, record, values, fields)
        return found

    def fetch_query(self, ref: RecordRef, fields: list[str] | None = None, *, lock: bool = False) -> None:
        return None

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        body = self.system_values(values)
        with transaction.atomic():
            entry, record, before = self._read(ref)
            if entry.version != expected_version:
                raise VersionMismatch(ref, expected_version, entry.version)
            self._patch(entry.remote_id, body)
            after = self._get(entry.remote_id)
            written = {name: self._plain(after)[name] for name in values}
            # The ledger holds what Countersign wrote over what it read: an edit that landed in
            # BottleCRM meanwhile, on another field, is then seen by the next read as a new version.
            self._remember(
                entry, before | written, archived=record.get("is_active") is False, version=expected_version + 1
            )
            return RecordState(
                ref=ref,
                version=entry.version,
                values=written,
                title=self._title(after),
                archived=after.get("is_active") is False,
            )

    def _remember(self, entry: ConnectorRecord, values: dict[str, Any], *, archived: bool, version: int) -> None:
        entry.version = version
        entry.values = values
        entry.fingerprint = _fingerprint(values, archived)
        if not archived:
            entry.archived_at = None
        elif entry.archived_at is None:
            entry.archived_at = timezone.now()
        entry.seen_at = timezone.now()
        entry.save(update_fields=["version", "values", "fingerprint", "archived_at", "seen_at"])

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> None:
        return None

    def set_hidden(self, ref: RecordRef, *, archived: bool, deleted: bool, expected_version: int) -> RecordState:
        if deleted:
            raise ValueError("BottleCRM cannot take a delete back: a deleted contact or case is gone")
        with transaction.atomic():
            entry, record, before = self._read(ref)
            if entry.version != expected_version:
                raise VersionMismatch(ref, expected_version, entry.version)
            self._patch(entry.remote_id, {"is_active": not archived})
            after = self._get(entry.remote_id)
            self._remember(entry, before, archived=after.get("is_active") is False, version=expected_version + 1)
            return self._state(ref, entry, after, before, None)

    def snapshot(self, ref: RecordRef, *, lock: bool = False) -> Snapshot:
        with transaction.atomic():
            entry, record, values = self._read(ref)
            return self._snapshot(entry, values)

    @staticmethod
    def _snapshot(entry: ConnectorRecord, values: dict[str, Any]) -> Snapshot:
        return {
            "values": dict(values),
            "version": entry.version,
            "archived_at": entry.archived_at.isoformat() if entry.archived_at else None,
            "deleted_at": None,
        }

    def snapshot_many(self, record_type: str, record_ids: Iterable[str], *, lock: bool = False) -> dict[str, Snapshot]:
        snapshots: dict[str, Snapshot] = {}
        for record_id in sorted(set(record_ids)):
            try:
                snapshots[record_id] = self.snapshot(RecordRef(record_type, record_id), lock=lock)
            except RecordNotFound:
                continue
        return snapshots

    def restore_many(self, record_type: str, items: Sequence[tuple[str, Snapshot, int]]) -> None:
        with transaction.atomic():
            # Every record is read and compared before any is written, so a conflict writes nothing.
            checked = []
            for record_id, snapshot, expected_version in items:
                ref = RecordRef(record_type, record_id)
                entry, record, before = self._read(ref)
                if entry.version != expected_version:
                    raise VersionMismatch(ref, expected_version, entry.version)
                checked.append((entry, record, before, snapshot))
            for entry, record, before, snapshot in checked:
                values = {name: value for name, value in snapshot["values"].items() if name in self.fields}
                archived = snapshot.get("archived_at") is not None
                body = self.system_values(values)
                if archived != (record.get("is_active") is False):
                    body["is_active"] = not archived
                if body:
                    self._patch(entry.remote_id, body)
                after = self._get(entry.remote_id)
                restored = before | {name: self._plain(after)[name] for name in values}
                self._remember(entry, restored, archived=after.get("is_active") is False, version=snapshot["version"])

    def referring(self, record_type: str, field: str, target_id: str) -> list[str]:
        # No binding maps a reference field (`validate` refuses one), so no record here refers to another.
        return []

    def move_references(self, record_type: str, field: str, from_id: str, to_id: str) -> list[MovedReference]:
        return []

    def create_many(self, record_type: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        for record_id, values in records:
            self.create(RecordRef(record_type, record_id), values)

    def create(self, ref: RecordRef, values: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None) -> str:
        """Create the record in BottleCRM (plus `extra`, BottleCRM's own fields) and map it to `ref` at
        version 1. Answers BottleCRM's id for it."""
        body = self.system_values({name: value for name, value in values.items() if name in self.fields})
        if self.record_type == "customer":
            body.setdefault("source_ref", ref.record_id)
        body |= dict(extra or {})
        answer = self._call("POST", f"{self.resource.path}/", body)
        remote_id = answer.get("id")
        if not isinstance(remote_id, str):
            raise StoreUnavailable(SYSTEM, f"creating a {self.resource.label} answered no id: {answer}")
        self.link(ref, remote_id)
        return remote_id

    def link(self, ref: RecordRef, remote_id: str, *, record: Mapping[str, Any] | None = None) -> None:
        """Map `ref` to BottleCRM's record `remote_id`, at version 1 with the values it holds now
        (`record`, when the caller has just read it)."""
        if record is None:
            record = self._get(remote_id)
        values = self._plain(record)
        ConnectorRecord.objects.update_or_create(
            system=CONNECTOR,
            record_type=ref.record_type,
            record_id=ref.record_id,
            defaults={
                "remote_id": remote_id,
                "version": 1,
                "values": values,
                "fingerprint": _fingerprint(values, record.get("is_active") is False),
                "archived_at": timezone.now() if record.get("is_active") is False else None,
                "seen_at": timezone.now(),
            },
        )

    def listed(self, *, page: int = 100) -> Iterator[dict[str, Any]]:
        """Every contact (or case) BottleCRM holds, page by page, as its list answers them."""
        offset = 0
        while True:
            answer = self._call("GET", f"{self.resource.path}/?limit={page}&offset={offset}")
            records = answer.get(self.resource.list_key)
            if not isinstance(records, list) or not records:
                return
            yield from records
            offset += len(records)

    def remote_id(self, ref: RecordRef) -> str:
        """BottleCRM's id for `ref`. Raises RecordNotFound when it is not mapped."""
        return self._entry(ref, lock=False).remote_id
