"""The connector contract: what every record store must do, run against each connector in
`tests.helpers.contract.CONNECTORS` (the built-in store, and each store outside the database).

A new connector is done when it passes every case here. The cases speak to the store only through
the `RecordStore` protocol and Countersign's own services, never through the connector's insides.
"""

from collections.abc import Iterator

import pytest
from django.db import transaction
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change, ChangeAction
from records.services.changes import ChangeOrigin, change_archive, change_update
from records.services.revert import RevertConflict, change_revert
from records.store import RecordNotFound, RecordRef, StoreUnavailable, VersionMismatch
from tests.helpers.contract import CONNECTORS, Connector, connector_params
from tests.helpers.factories import UserFactory
from tests.helpers.seeing import make_auditor

ORIGIN = ChangeOrigin(applied_by="worker@test", workflow_slug="triage")
OPS = Actor.system("ops")


OUTSIDE = connector_params(lambda connector: connector.outside)
HIDING = connector_params(lambda connector: connector.hides)


@pytest.fixture(params=connector_params())
def connector(request: pytest.FixtureRequest, db: None) -> Iterator[Connector]:
    made = CONNECTORS[request.param]()
    with made.bind():
        yield made


def test_fetch_answers_the_values_the_version_the_title_and_visibility(connector):
    ref = connector.new_record()
    state = connector.store.fetch(ref)
    assert state.values[connector.field] == connector.values[0]
    assert (state.title, state.archived, state.deleted) == ("Maria Lopez", False, False)
    assert isinstance(state.version, int)
    assert connector.store.fetch(ref, [connector.field]).values == {connector.field: connector.values[0]}
    assert connector.store.fetch(ref, []).values == {}
    with pytest.raises(RecordNotFound):
        connector.store.fetch(RecordRef(connector.record_type, connector.missing_id))


def test_fetch_many_answers_those_that_exist_by_id(connector):
    first, second = connector.new_record(), connector.new_record(**{connector.title_field: "James Smith"})
    found = connector.store.fetch_many(
        connector.record_type, [first.record_id, connector.missing_id, second.record_id], [connector.title_field]
    )
    assert {record_id: state.values for record_id, state in found.items()} == {
        first.record_id: {connector.title_field: "Maria Lopez"},
        second.record_id: {connector.title_field: "James Smith"},
    }


def test_a_write_with_the_expected_version_moves_it_up_one(connector):
    ref = connector.new_record()
    version = connector.store.fetch(ref, []).version
    written = connector.store.write(ref, {connector.field: connector.values[1]}, expected_version=version)
    assert (written.version, written.values[connector.field]) == (version + 1, connector.values[1])
    now = connector.store.fetch(ref)
    assert (now.version, now.values[connector.field], now.title) == (version + 1, connector.values[1], "Maria Lopez")


def test_a_stale_write_is_a_conflict_and_writes_nothing(connector):
    ref = connector.new_record()
    version = connector.store.fetch(ref, []).version
    connector.store.write(ref, {connector.field: connector.values[1]}, expected_version=version)
    with pytest.raises(VersionMismatch) as stale:
        connector.store.write(ref, {connector.field: connector.values[2]}, expected_version=version)
    assert (stale.value.expected, stale.value.actual) == (version, version + 1)
    now = connector.store.fetch(ref, [connector.field])
    assert (now.version, now.values[connector.field]) == (version + 1, connector.values[1])


@pytest.mark.parametrize("connector", HIDING, indirect=True)
def test_archive_and_unarchive_and_the_undo_of_an_archive(connector):
    ref = connector.new_record()
    version = connector.store.fetch(ref, []).version
    archived = connector.store.set_hidden(ref, archived=True, deleted=False, expected_version=version)
    assert (archived.version, connector.store.fetch(ref).archived) == (version + 1, True)
    with pytest.raises(VersionMismatch):
        connector.store.set_hidden(ref, archived=False, deleted=False, expected_version=version)
    back = connector.store.set_hidden(ref, archived=False, deleted=False, expected_version=version + 1)
    assert (back.version, connector.store.fetch(ref).archived) == (version + 2, False)

    change = change_archive(ref=ref, origin=ORIGIN)
    assert connector.store.fetch(ref).archived
    change_revert(change=change, actor=OPS, applied_by="ops")
    now = connector.store.fetch(ref)
    assert (now.archived, now.version, now.values[connector.field]) == (False, version + 4, connector.values[0])


def test_snapshot_and_restore_put_the_record_back_at_the_version_asked(connector):
    ref = connector.new_record()
    snapshot = connector.store.snapshot(ref)
    version = snapshot["version"]
    connector.store.write(ref, {connector.field: connector.values[1]}, expected_version=version)
    wanted = {**snapshot, "values": {connector.field: connector.values[0]}, "version": version + 2}
    with pytest.raises(VersionMismatch):
        connector.store.restore_many(connector.record_type, [(ref.record_id, wanted, version)])
    connector.store.restore_many(connector.record_type, [(ref.record_id, wanted, version + 1)])
    now = connector.store.fetch(ref)
    assert (now.version, now.values[connector.field], now.archived) == (version + 2, connector.values[0], False)
    assert connector.store.snapshot_many(connector.record_type, [ref.record_id, connector.missing_id]) == {
        ref.record_id: connector.store.snapshot(ref)
    }


def test_an_undo_puts_back_what_the_change_replaced(connector):
    ref = connector.new_record()
    change = change_update(ref=ref, values={connector.field: connector.values[1]}, origin=ORIGIN)
    revert = change_revert(change=change, actor=OPS, applied_by="ops", reason="wrong customer")
    now = connector.store.fetch(ref)
    assert (now.values[connector.field], now.version) == (connector.values[0], change.version_after + 1)
    assert (revert.before, revert.after) == (
        {connector.field: connector.values[1]},
        {connector.field: connector.values[0]},
    )
    assert AuditEvent.objects.get(action="change.reverted", record_id=ref.record_id).new_value == connector.values[0]


def test_an_undo_over_an_edit_made_in_the_system_is_a_conflict_and_overwrites_nothing(connector):
    ref = connector.new_record()
    change = change_update(ref=ref, values={connector.field: connector.values[1]}, origin=ORIGIN)
    connector.edit_outside(ref, {connector.field: connector.values[2]})
    with pytest.raises(RevertConflict) as conflict:
        change_revert(change=change, actor=OPS, applied_by="ops")
    [part] = conflict.value.result.conflicts
    assert (part.field, part.before, part.written, part.now) == (connector.field, *connector.values)
    assert connector.store.fetch(ref).values[connector.field] == connector.values[2]
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()


@pytest.mark.parametrize("connector", OUTSIDE, indirect=True)
def test_an_edit_made_in_the_system_shows_on_the_records_timeline(connector, client):
    ref = connector.new_record()
    client.force_login(make_auditor(UserFactory(username="auditor")))
    url = reverse("record-timeline", args=[ref.record_type, ref.record_id])
    assert client.get(url).status_code == 200
    connector.edit_outside(ref, {connector.field: connector.values[2]})

    html = client.get(url).content.decode()
    assert "Changed outside Countersign between" in html
    assert f"<del>{connector.values[0]}</del> → <ins>{connector.values[2]}</ins>" in html
    client.get(url)
    assert AuditEvent.objects.filter(action="record.changed_outside", record_id=ref.record_id).count() == 1


@pytest.mark.parametrize("connector", OUTSIDE, indirect=True)
def test_an_unreachable_store_fails_closed(connector):
    ref = connector.new_record()
    change = change_update(ref=ref, values={connector.field: connector.values[1]}, origin=ORIGIN)
    assert connector.unreachable is not None
    with connector.unreachable():
        with pytest.raises(StoreUnavailable):
            connector.store.fetch(ref)
        with pytest.raises(StoreUnavailable):
            connector.store.write(ref, {connector.field: connector.values[2]}, expected_version=change.version_after)
        with pytest.raises(StoreUnavailable), transaction.atomic():
            change_revert(change=change, actor=OPS, applied_by="ops")
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    now = connector.store.fetch(ref)
    assert (now.values[connector.field], now.version) == (connector.values[1], change.version_after)
    assert not AuditEvent.objects.filter(action="record.changed_outside").exists()
