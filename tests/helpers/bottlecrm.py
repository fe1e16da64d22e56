"""A real BottleCRM for tests: the `bottlecrm` fixture, a store bound to it, fresh contacts and cases.

It reads BOTTLECRM_URL and BOTTLECRM_TOKEN, and for a test that locks BottleCRM's own rows,
BOTTLECRM_DATABASE_URL (`scripts/bottlecrm.sh up` writes them to `var/bottlecrm/env`; CI exports
them). Without them a test that asks for the fixture skips, saying so; with COUNTERSIGN_NO_SKIPS=1
that skip fails the run. Every contact and case a test makes is
deleted from BottleCRM when the test ends.

    def test_something(bottlecrm: BottleCrm) -> None:
        store = bottlecrm.store("customer")           # a BottleCrmStore over BOTTLECRM_URL
        ref = bottlecrm.customer(store, email="a@example.com")   # a fresh contact, mapped to a CUS- id
        bottlecrm.patch(ref, {"email": "b@example.com"})         # an edit made in BottleCRM itself
"""

import fcntl
import hashlib
import json
import os
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from records.store import RecordRef, store_bind
from records.store.bottlecrm import RESOURCES, BottleCrmStore

CUSTOMER_FIELDS = {
    "full_name": "name",
    "email": "email",
    "phone": "phone",
    "shipping_address": "address_line",
    "support_notes": "description",
}
TICKET_FIELDS = {"subject": "name", "status": "status", "priority": "priority", "resolution_note": "description"}
FIELDS = {"customer": CUSTOMER_FIELDS, "ticket": TICKET_FIELDS}

SKIP_REASON = (
    "needs a running BottleCRM: set BOTTLECRM_URL and BOTTLECRM_TOKEN "
    "(scripts/bottlecrm.sh up starts one and writes them to var/bottlecrm/env)"
)

DATABASE_SKIP_REASON = (
    "needs BottleCRM's own database, to hold its write at a contact's row lock: set BOTTLECRM_DATABASE_URL "
    "(scripts/bottlecrm.sh up writes it to var/bottlecrm/env)"
)
# BottleCRM's `contacts.Contact` model (`db_table = "contacts"`): saving a contact UPDATEs its row here.
CONTACTS_TABLE = "contacts"
# BottleCRM's row-level security shows a connection only the rows of the organisation this names.
ORGANISATION_SETTING = "app.current_org"


_held = 0  # how deep this process is inside `one_test_at_a_time`


@contextmanager
def one_test_at_a_time(url: str) -> Iterator[None]:
    """Hold the BottleCRM at `url` for this test alone among the test processes on this machine (the
    pytest-xdist workers of `make test`): each test makes records of its own, but some read BottleCRM's
    whole list, a page at a time by offset, which another test's deletions at that moment would shift.
    A lock file beside the others in the temporary folder, released by the system if the process dies."""
    global _held
    if _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    name = f"countersign-tests-bottlecrm-{hashlib.sha256(url.encode()).hexdigest()[:16]}.lock"
    with (Path(tempfile.gettempdir()) / name).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _held = 1
        try:
            yield
        finally:
            _held = 0
            fcntl.flock(lock, fcntl.LOCK_UN)


def bottlecrm_environment() -> tuple[str, str] | None:
    url, token = os.environ.get("BOTTLECRM_URL"), os.environ.get("BOTTLECRM_TOKEN")
    return (url, token) if url and token else None


def bottlecrm_database_url() -> str | None:
    return os.environ.get("BOTTLECRM_DATABASE_URL") or None


class BottleCrm:
    """The BottleCRM a test talks to, and what the test made in it."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.made: list[tuple[str, str]] = []  # (API path, id) to delete at the end
        self.pinned: list[str] = []  # record types `bind` pinned, back on their bindings at the end

    def store(
        self,
        record_type: str,
        *,
        fields: Mapping[str, str] | None = None,
        side_effects: Mapping[str, str] | None = None,
        store_class: type[BottleCrmStore] = BottleCrmStore,
        **options: Any,
    ) -> BottleCrmStore:
        return store_class(
            url=self.url,
            token=self.token,
            record_type=record_type,
            fields=dict(FIELDS[record_type] if fields is None else fields),
            side_effects=side_effects,
            **options,
        )

    def bind(self, record_type: str, **options: Any) -> BottleCrmStore:
        """A store over this BottleCRM, pinned to `record_type` in this process until the test ends."""
        store = self.store(record_type, **options)
        store_bind(record_type=record_type, store=store)
        self.pinned.append(record_type)
        return store

    def stores_file(self, folder: Path, record_type: str) -> Path:
        """A stores file binding `record_type` to the BottleCRM named by BOTTLECRM_URL and
        BOTTLECRM_TOKEN, as an operator writes it: a worker started from this process reads the same."""
        fields = ", ".join(f"{name}: {column}" for name, column in FIELDS[record_type].items())
        path = folder / "stores.yaml"
        path.write_text(
            f"stores:\n  {record_type}:\n    connector: bottlecrm\n    url: ${{BOTTLECRM_URL}}\n"
            f"    token: ${{BOTTLECRM_TOKEN}}\n    fields: {{{fields}}}\n",
            encoding="utf-8",
        )
        return path

    def customer(self, store: BottleCrmStore, **values: Any) -> RecordRef:
        """A new contact, mapped to a fresh `CUS-` id at version 1."""
        tag = uuid.uuid4().hex[:10]
        plain = {
            "full_name": f"Ada Test{tag}",
            "email": f"ada.{tag}@example.com",
            "phone": "",
            "shipping_address": "4 Old Mill Lane, Leith",
            "support_notes": "",
        } | values
        ref = RecordRef("customer", f"CUS-T{tag}")
        self.made.append(("contacts", store.create(ref, plain)))
        return ref

    def ticket(self, store: BottleCrmStore, **values: Any) -> RecordRef:
        """A new case, mapped to a fresh `T-` id at version 1."""
        tag = uuid.uuid4().hex[:10]
        plain = {"subject": f"Parcel lost {tag}", "status": "open", "priority": "normal", "resolution_note": ""}
        ref = RecordRef("ticket", f"T-T{tag}")
        self.made.append(("cases", store.create(ref, plain | values)))
        return ref

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the test's own BottleCRM
            f"{self.url}/api/{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer

    def raw(self, store: BottleCrmStore, ref: RecordRef) -> dict[str, Any]:
        """The record as BottleCRM's API answers it, read beside Countersign."""
        resource = RESOURCES[ref.record_type]
        record: dict[str, Any] = self.call("GET", f"{resource.path}/{store.remote_id(ref)}/")[resource.detail_key]
        return record

    def organisation(self, store: BottleCrmStore, ref: RecordRef) -> str:
        """The id of the BottleCRM organisation that holds the record."""
        organisation: str = self.raw(store, ref)["org"]["id"]
        return organisation

    def patch(self, store: BottleCrmStore, ref: RecordRef, body: Mapping[str, Any]) -> None:
        """An edit made in BottleCRM itself, outside Countersign (BottleCRM's own field names)."""
        self.call("PATCH", f"{RESOURCES[ref.record_type].path}/{store.remote_id(ref)}/", body)

    def clean_up(self) -> None:
        for record_type in self.pinned:
            store_bind(record_type=record_type, store=None)
        for path, remote_id in self.made:
            try:
                self.call("DELETE", f"{path}/{remote_id}/")
            except OSError:
                continue


@pytest.fixture
def bottlecrm() -> Iterator[BottleCrm]:
    """The running BottleCRM named by BOTTLECRM_URL and BOTTLECRM_TOKEN; skips with the reason without them."""
    environment = bottlecrm_environment()
    if environment is None:
        pytest.skip(SKIP_REASON)
    crm = BottleCrm(*environment)
    with one_test_at_a_time(crm.url):
        yield crm
        crm.clean_up()
