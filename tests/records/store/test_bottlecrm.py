"""The `bottlecrm` connector against a real BottleCRM process (see tests/helpers/bottlecrm.py)."""

from typing import Any

import pytest

from records.models import ConnectorRecord
from records.store import RecordNotFound, RecordRef, StoreUnavailable, VersionMismatch
from records.store.bottlecrm import BottleCrmStore, supports, validate
from tests.helpers.bottlecrm import BottleCrm

pytestmark = pytest.mark.django_db


def test_fetch_reads_the_mapped_fields_of_a_contact_at_version_one(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store, full_name="Ada Lovelace", shipping_address="12 Analytical Row")

    state = store.fetch(ref)

    assert state.version == 1
    assert state.title == "Ada Lovelace"
    assert state.values["full_name"] == "Ada Lovelace"
    assert state.values["shipping_address"] == "12 Analytical Row"
    assert set(state.values) == set(store.fields)
    assert store.fetch(ref, ["shipping_address"]).values == {"shipping_address": "12 Analytical Row"}
    assert store.fetch(ref, []).values == {}
    # Countersign's id is shown in BottleCRM as the contact's reference.
    assert bottlecrm.raw(store, ref)["source_ref"] == ref.record_id


def test_fetch_of_an_unknown_id_is_not_found(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    with pytest.raises(RecordNotFound):
        store.fetch(RecordRef("customer", "CUS-NOPE"))


def test_fetch_many_answers_those_that_exist(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("ticket")
    first = bottlecrm.ticket(store, status="pending")
    second = bottlecrm.ticket(store, priority="urgent")

    found = store.fetch_many("ticket", [first.record_id, second.record_id, "T-MISSING"], ["status", "priority"])

    assert set(found) == {first.record_id, second.record_id}
    assert found[first.record_id].values == {"status": "pending", "priority": "normal"}
    assert found[second.record_id].values == {"status": "open", "priority": "urgent"}


def test_write_lands_in_bottlecrm_and_moves_the_version_up_one(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store)

    state = store.write(ref, {"shipping_address": "9 New Street, Leith"}, expected_version=1)

    assert state.version == 2
    assert state.values == {"shipping_address": "9 New Street, Leith"}
    assert bottlecrm.raw(store, ref)["address_line"] == "9 New Street, Leith"
    assert store.fetch(ref).version == 2


def test_write_of_a_case_translates_status_and_priority(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("ticket")
    ref = bottlecrm.ticket(store)

    store.write(ref, {"status": "pending", "priority": "high"}, expected_version=1)

    raw = bottlecrm.raw(store, ref)
    assert (raw["status"], raw["priority"]) == ("Pending", "High")
    assert store.fetch(ref, ["status", "priority"]).values == {"status": "pending", "priority": "high"}


def test_a_stale_write_is_a_version_mismatch_and_writes_nothing(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store, shipping_address="1 First Street")
    store.write(ref, {"shipping_address": "2 Second Street"}, expected_version=1)

    with pytest.raises(VersionMismatch) as raised:
        store.write(ref, {"shipping_address": "3 Third Street"}, expected_version=1)

    assert (raised.value.expected, raised.value.actual) == (1, 2)
    assert bottlecrm.raw(store, ref)["address_line"] == "2 Second Street"


def test_an_edit_made_in_bottlecrm_is_the_next_version(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store, shipping_address="1 First Street")

    bottlecrm.patch(store, ref, {"address_line": "5 Outside Road"})

    state = store.fetch(ref)
    assert state.version == 2
    assert state.values["shipping_address"] == "5 Outside Road"
    entry = ConnectorRecord.objects.get(record_type="customer", record_id=ref.record_id)
    assert (entry.version, entry.values["shipping_address"]) == (2, "5 Outside Road")
    # Reading it again finds nothing new: the version stays.
    assert store.fetch(ref).version == 2
    # A write still expecting the version Countersign knew before is refused, and BottleCRM keeps the edit.
    with pytest.raises(VersionMismatch):
        store.write(ref, {"shipping_address": "6 Late Lane"}, expected_version=1)
    assert bottlecrm.raw(store, ref)["address_line"] == "5 Outside Road"


class _EditInTheWindow(BottleCrmStore):
    """A store whose PATCH is preceded by an edit made in BottleCRM: the window between the read and
    the write that BottleCRM's lack of a conditional write leaves open."""

    outside: tuple[BottleCrm, dict[str, Any]]

    def _patch(self, remote_id: str, body: Any) -> None:
        crm, edit = self.outside
        crm.call("PATCH", f"{self.resource.path}/{remote_id}/", edit)
        super()._patch(remote_id, body)


def test_an_edit_of_another_field_inside_the_window_survives_and_is_the_next_version(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer", store_class=_EditInTheWindow)
    assert isinstance(store, _EditInTheWindow)
    ref = bottlecrm.customer(store, shipping_address="1 First Street", support_notes="")
    store.outside = (bottlecrm, {"description": "called about the parcel"})

    state = store.write(ref, {"shipping_address": "2 Second Street"}, expected_version=1)

    assert state.version == 2
    raw = bottlecrm.raw(store, ref)
    assert (raw["address_line"], raw["description"]) == ("2 Second Street", "called about the parcel")
    after = store.fetch(ref)
    assert after.version == 3
    assert after.values["support_notes"] == "called about the parcel"


def test_an_edit_of_the_same_field_inside_the_window_is_overwritten(bottlecrm: BottleCrm) -> None:
    """The window the docs state: BottleCRM cannot refuse the PATCH, so the outside value is lost."""
    store = bottlecrm.store("customer", store_class=_EditInTheWindow)
    assert isinstance(store, _EditInTheWindow)
    ref = bottlecrm.customer(store, shipping_address="1 First Street")
    store.outside = (bottlecrm, {"address_line": "7 Outside Road"})

    state = store.write(ref, {"shipping_address": "2 Second Street"}, expected_version=1)

    assert state.version == 2
    assert bottlecrm.raw(store, ref)["address_line"] == "2 Second Street"
    assert store.fetch(ref).version == 2


def test_archive_makes_the_contact_inactive_and_unarchive_brings_it_back(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store)

    archived = store.set_hidden(ref, archived=True, deleted=False, expected_version=1)

    assert (archived.version, archived.archived) == (2, True)
    assert bottlecrm.raw(store, ref)["is_active"] is False
    assert store.snapshot(ref)["archived_at"] is not None
    back = store.set_hidden(ref, archived=False, deleted=False, expected_version=2)
    assert (back.version, back.archived) == (3, False)
    assert bottlecrm.raw(store, ref)["is_active"] is True
    with pytest.raises(VersionMismatch):
        store.set_hidden(ref, archived=True, deleted=False, expected_version=2)


def test_delete_is_refused_since_bottlecrm_cannot_take_it_back(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store)
    with pytest.raises(ValueError, match="cannot take a delete back"):
        store.set_hidden(ref, archived=False, deleted=True, expected_version=1)
    assert bottlecrm.raw(store, ref)["is_active"] is True


def test_snapshot_and_restore_put_the_values_back(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store, shipping_address="1 First Street", support_notes="vip")
    snapshot = store.snapshot(ref)
    store.write(ref, {"shipping_address": "2 Second Street", "support_notes": ""}, expected_version=1)

    store.restore_many("customer", [(ref.record_id, snapshot | {"version": 3}, 2)])

    raw = bottlecrm.raw(store, ref)
    assert (raw["address_line"], raw["description"]) == ("1 First Street", "vip")
    assert store.fetch(ref).version == 3
    assert store.snapshot_many("customer", [ref.record_id, "CUS-NOPE"]).keys() == {ref.record_id}


def test_restore_over_an_outside_edit_is_a_conflict_and_restores_nothing(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    first = bottlecrm.customer(store, shipping_address="1 First Street")
    second = bottlecrm.customer(store, shipping_address="1 Other Street")
    snapshots = store.snapshot_many("customer", [first.record_id, second.record_id])
    store.write(first, {"shipping_address": "2 Second Street"}, expected_version=1)
    store.write(second, {"shipping_address": "2 Other Street"}, expected_version=1)
    bottlecrm.patch(store, second, {"address_line": "3 Outside Road"})

    with pytest.raises(VersionMismatch):
        store.restore_many(
            "customer",
            [
                (first.record_id, snapshots[first.record_id] | {"version": 3}, 2),
                (second.record_id, snapshots[second.record_id] | {"version": 3}, 2),
            ],
        )

    assert bottlecrm.raw(store, first)["address_line"] == "2 Second Street"
    assert bottlecrm.raw(store, second)["address_line"] == "3 Outside Road"


def test_create_many_makes_records_mapped_at_version_one(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = RecordRef("customer", "CUS-T77001")
    store.create_many("customer", [(ref.record_id, {"full_name": "Grace Hopper", "email": "grace.t77001@example.com"})])
    bottlecrm.made.append(("contacts", store.remote_id(ref)))

    state = store.fetch(ref)
    assert (state.version, state.title, state.values["email"]) == (1, "Grace Hopper", "grace.t77001@example.com")
    raw = bottlecrm.raw(store, ref)
    assert (raw["first_name"], raw["last_name"]) == ("Grace", "Hopper")


def test_a_closed_port_is_unavailable(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store)
    closed = BottleCrmStore(
        url="http://127.0.0.1:9", token=bottlecrm.token, record_type="customer", fields=store.fields, timeout=2
    )
    with pytest.raises(StoreUnavailable, match="did not answer"):
        closed.fetch(RecordRef("customer", ref.record_id))


def test_a_refused_token_is_unavailable_and_says_so(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store)
    refused = BottleCrmStore(url=bottlecrm.url, token="bcrm_pat_wrong", record_type="customer", fields=store.fields)
    with pytest.raises(StoreUnavailable, match="token was refused"):
        refused.write(ref, {"shipping_address": "2 Second Street"}, expected_version=1)
    assert bottlecrm.raw(store, ref)["address_line"] == "4 Old Mill Lane, Leith"


def test_validate_names_each_bad_field() -> None:
    problems = validate(
        {"url": "http://crm", "token": ""},
        {"shipping_address": "postal", "verified": "name", "nickname": "email"},
        record_type="customer",
    )
    assert ("token", "is required") in problems
    assert any(key == "fields.shipping_address" and "has no field postal" in reason for key, reason in problems)
    assert any(key == "fields.verified" and "cannot hold verified" in reason for key, reason in problems)
    assert any(key == "fields.nickname" and "customer has no field nickname" in reason for key, reason in problems)
    assert validate({"url": "u", "token": "t"}, {}, record_type="order") == [
        ("connector", "BottleCRM holds customers (contacts) and tickets (cases), not order")
    ]


def test_bottlecrm_supports_update_and_archive_only() -> None:
    assert supports("update") and supports("archive")
    assert not supports("delete")
    assert not supports("merge")


def test_check_reads_one_record_and_finds_every_mapped_field(bottlecrm: BottleCrm) -> None:
    store = bottlecrm.store("ticket")
    bottlecrm.ticket(store)

    check = store.check("ticket")

    assert check.ok, check.problems
    assert check.found[0] == f"BottleCRM at {bottlecrm.url}: cases readable with the token"
    assert check.found[1].startswith("read case ")


def test_check_says_when_the_token_is_refused_or_nothing_answers(bottlecrm: BottleCrm) -> None:
    refused = bottlecrm.store("customer")
    refused.token = "bcrm_pat_wrong"
    check = refused.check("customer")
    assert not check.reachable
    assert check.problems == [("token", "the token was refused (403)")]

    closed = BottleCrmStore(url="http://127.0.0.1:9", token="t", record_type="customer", fields={"email": "email"})
    [(key, reason)] = closed.check("customer").problems
    assert key == "url" and "did not answer" in reason
