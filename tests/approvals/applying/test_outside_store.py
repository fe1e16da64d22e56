"""Applying to a store outside Countersign's database: intent, write, done; recovery that reads the
store; failing closed while it does not answer. In-process, with the memory store playing the
system of record (the crash cases with a real worker and `kill -9` are in test_outside_store_crash.py)."""

from collections.abc import Iterator

import pytest
from django.db import transaction

from approvals.applying.queueing import apply_retry_later
from approvals.applying.services import Outcome, proposal_apply, proposals_apply
from approvals.jobs import APPLY
from approvals.models import Proposal, ProposalStatus, Stage, StopScope, StopSwitch
from approvals.stops.services import stop_engage, stop_release
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change, RecordSighting, StoreOutage
from records.store import RecordRef, get_store
from tests.helpers.factories import ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.memory_store import MemoryRecordStore, bound

WORKER = "worker@test/1"
MARIA = RecordRef("customer", "CUS-10432")
OLD, NEW = "4 Old Mill Lane, Leith", "12 Harbour Road, Leith"


@pytest.fixture
def crm() -> Iterator[MemoryRecordStore]:
    store = MemoryRecordStore(name="CRM")
    with bound("customer", store):
        store.create_many("customer", [(MARIA.record_id, {"full_name": "Maria Lopez", "shipping_address": OLD})])
        yield store


def approved(**kwargs):  # type: ignore[no-untyped-def]
    return ProposalFactory(
        status=ProposalStatus.APPROVED,
        record_id=MARIA.record_id,
        changes={"shipping_address": NEW},
        base={"shipping_address": OLD},
        **kwargs,
    )


def apply(proposal: Proposal) -> Outcome:
    return proposal_apply(proposal_id=proposal.pk, worker=WORKER).outcome


def held(store: MemoryRecordStore) -> tuple[str, int]:
    """What the system of record holds, looked at from its side (whether or not it answers Countersign)."""
    row = store.rows[MARIA]
    return row.values["shipping_address"], row.version


def test_an_approved_update_is_written_once_with_its_change_and_events(db, crm):
    proposal = approved()
    assert apply(proposal) == Outcome.APPLIED
    assert held(crm) == (NEW, 2)
    assert crm.writes == 1
    proposal.refresh_from_db()
    change = Change.objects.get(proposal_id=proposal.pk)
    assert (proposal.status, proposal.change_id) == (ProposalStatus.APPLIED, change.id)
    assert not change.in_flight
    assert (change.before, change.after) == ({"shipping_address": OLD}, {"shipping_address": NEW})
    assert (change.version_before, change.version_after) == (1, 2)
    event = AuditEvent.objects.get(action="change.applied", proposal_id=proposal.pk)
    assert (event.change_id, event.old_value, event.new_value) == (change.id, OLD, NEW)


def test_a_write_that_landed_but_whose_answer_was_lost_is_finished_without_writing_again(db, crm):
    proposal = approved()
    crm.lose_answers = 1
    assert apply(proposal) == Outcome.RETRY
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPROVED
    intent = Change.with_in_flight.get(proposal_id=proposal.pk)
    assert intent.in_flight and not Change.objects.filter(proposal_id=proposal.pk).exists()
    assert not AuditEvent.objects.filter(action="change.applied").exists()

    assert apply(proposal) == Outcome.APPLIED
    assert (crm.writes, held(crm)) == (1, (NEW, 2))
    change = Change.objects.get(proposal_id=proposal.pk)
    assert (change.id, change.version_after) == (intent.id, 2)
    assert AuditEvent.objects.filter(action="change.applied", proposal_id=proposal.pk).count() == 1
    assert not AuditEvent.objects.filter(action="record.changed_outside").exists()  # it was our own write


def test_an_intent_whose_write_never_landed_is_written_on_the_retry(db, crm):
    proposal = approved()
    crm.refuse_writes = "timed out after 10s"
    assert apply(proposal) == Outcome.RETRY
    assert (crm.writes, held(crm)) == (0, (OLD, 1))
    assert Change.with_in_flight.get(proposal_id=proposal.pk).in_flight

    crm.refuse_writes = ""
    assert apply(proposal) == Outcome.APPLIED
    assert (crm.writes, held(crm)) == (1, (NEW, 2))
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPLIED


def test_an_outside_edit_inside_the_window_is_a_conflict_for_a_person_and_nothing_is_overwritten(db, crm):
    proposal = approved()
    crm.refuse_writes = "timed out after 10s"
    assert apply(proposal) == Outcome.RETRY
    crm.refuse_writes = ""
    crm.edit_outside(MARIA, {"shipping_address": "7 Quay Street, Leith"})

    assert apply(proposal) == Outcome.CONFLICT
    assert (crm.writes, held(crm)) == (0, ("7 Quay Street, Leith", 2))
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.CONFLICT
    assert "shipping_address is now '7 Quay Street, Leith'" in proposal.last_error
    assert not Change.with_in_flight.filter(proposal_id=proposal.pk).exists()
    event = AuditEvent.objects.get(action="proposal.conflict", proposal_id=proposal.pk)
    assert event.details["current"]["shipping_address"] == "7 Quay Street, Leith"
    assert (event.details["version"], event.details["expected_version"]) == (2, 1)


def test_an_outside_edit_before_the_intent_is_a_conflict_as_with_the_built_in_store(db, crm):
    proposal = approved()
    crm.edit_outside(MARIA, {"shipping_address": "7 Quay Street, Leith"})
    assert apply(proposal) == Outcome.CONFLICT
    assert (crm.writes, held(crm)) == (0, ("7 Quay Street, Leith", 2))
    assert not Change.with_in_flight.exists()


def test_an_unreachable_store_keeps_the_proposal_approved_retries_with_backoff_then_fails_with_the_reason(
    db, crm, settings, queued, django_capture_on_commit_callbacks
):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_MAX_ATTEMPTS": 3, "APPLY_RETRY_SECONDS": 10}
    proposal = approved()
    crm.unreachable = "connection refused"
    for attempt in (1, 2):
        [result] = proposals_apply(proposal_ids=[proposal.pk], worker=WORKER)
        assert (result.outcome, result.attempts) == (Outcome.RETRY, attempt)
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.APPROVED
        with django_capture_on_commit_callbacks(execute=True):
            apply_retry_later(results=[result])
    assert [job.name for job in queued] == [APPLY, APPLY]
    assert crm.writes == 0 and held(crm) == (OLD, 1)

    assert apply(proposal) == Outcome.FAILED
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.FAILED
    assert proposal.last_error == "StoreUnavailable: CRM is unreachable: connection refused"
    failed = AuditEvent.objects.get(action="proposal.failed", proposal_id=proposal.pk)
    assert failed.reason == proposal.last_error
    assert not Change.with_in_flight.exists()


def test_retries_wait_longer_each_time(db, crm, settings, monkeypatch):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_MAX_ATTEMPTS": 9, "APPLY_RETRY_SECONDS": 10}
    sent: list[float | None] = []
    monkeypatch.setattr(
        "approvals.applying.queueing.apply_queue", lambda *, proposal_ids, countdown: sent.append(countdown)
    )
    proposal = approved()
    crm.unreachable = "connection refused"
    for _ in range(3):
        apply_retry_later(results=proposals_apply(proposal_ids=[proposal.pk], worker=WORKER))
    assert sent == [10, 20, 40]


def test_an_intent_whose_outcome_is_unknown_is_never_given_up(db, crm, settings):
    settings.COUNTERSIGN = {**settings.COUNTERSIGN, "APPLY_MAX_ATTEMPTS": 2}
    proposal = approved()
    crm.lose_answers = 1
    assert apply(proposal) == Outcome.RETRY
    crm.unreachable = "connection refused"
    assert apply(proposal) == Outcome.RETRY
    assert apply(proposal) == Outcome.RETRY
    proposal.refresh_from_db()
    assert (proposal.status, proposal.apply_attempts) == (ProposalStatus.APPROVED, 3)
    crm.unreachable = ""
    assert apply(proposal) == Outcome.APPLIED
    assert (crm.writes, held(crm)) == (1, (NEW, 2))


def test_the_outage_is_recorded_from_the_first_failure_and_ended_by_the_next_write(db, crm):
    first, second = approved(), approved()
    crm.unreachable = "connection refused"
    assert apply(first) == Outcome.RETRY
    outage = StoreOutage.objects.get(record_type="customer")
    assert (outage.store, outage.reason) == ("CRM", "connection refused")
    crm.unreachable = "timed out after 10s"
    assert apply(second) == Outcome.RETRY
    later = StoreOutage.objects.get(record_type="customer")
    assert (later.since, later.reason) == (outage.since, "timed out after 10s")
    assert later.last_error_at > outage.last_error_at
    went = AuditEvent.objects.get(action="store.unreachable")
    assert (went.record_type, went.reason, went.details["store"]) == ("customer", "connection refused", "CRM")

    crm.unreachable = ""
    assert apply(first) == Outcome.APPLIED
    assert not StoreOutage.objects.exists()
    came = AuditEvent.objects.get(action="store.reachable")
    assert (came.record_type, came.reason) == ("customer", "CRM answered again")


def test_once_a_store_does_not_answer_the_rest_of_the_chunk_for_it_is_not_sent(db, crm):
    proposals = [approved() for _ in range(3)]
    calls = 0
    fetch = crm.fetch

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return fetch(*args, **kwargs)

    crm.fetch = counted  # type: ignore[method-assign]
    crm.unreachable = "connection refused"
    results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
    assert [(r.outcome, r.attempts) for r in results] == [(Outcome.RETRY, 1)] * 3
    assert calls == 1
    assert set(Proposal.objects.values_list("status", flat=True)) == {ProposalStatus.APPROVED}


def test_a_stop_engaged_while_a_write_is_in_flight_holds_it_and_release_writes_it_once(db, crm):
    proposal = approved()
    crm.refuse_writes = "timed out after 10s"
    assert apply(proposal) == Outcome.RETRY
    crm.refuse_writes = ""
    with transaction.atomic():
        switch = stop_engage(scope=StopScope.GLOBAL, reason="bad batch going out", actor=Actor.user(UserFactory()))
    assert apply(proposal) == Outcome.STOPPED
    assert (crm.writes, held(crm)) == (0, (OLD, 1))
    assert Change.with_in_flight.get(proposal_id=proposal.pk).in_flight

    stop_release(switch=switch, user=UserFactory(username="ops"), note="fixed the pipeline")
    assert apply(proposal) == Outcome.APPLIED
    assert (crm.writes, held(crm)) == (1, (NEW, 2))


def test_an_archive_goes_through_an_intent_too(db, crm):
    proposal = ProposalFactory(
        status=ProposalStatus.APPROVED, record_id=MARIA.record_id, action="archive", changes={}, base={}
    )
    crm.lose_answers = 1
    assert apply(proposal) == Outcome.RETRY
    assert apply(proposal) == Outcome.APPLIED
    assert crm.writes == 1
    assert crm.fetch(MARIA, []).archived
    change = Change.objects.get(proposal_id=proposal.pk)
    assert change.after["archived_at"] is not None and change.version_after == 2
    assert not AuditEvent.objects.filter(action="record.changed_outside").exists()


def test_a_chunks_writes_are_marked_done_together_and_a_later_read_finds_no_edit_outside(db, crm):
    proposals = _four_on_the_crm(crm)
    others = [RecordRef("customer", p.record_id) for p in proposals[1:]]
    results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    assert crm.writes == 4
    changes = Change.objects.filter(proposal_id__in=[p.pk for p in proposals])
    assert {(c.record_id, c.after["shipping_address"], c.version_after) for c in changes} == {
        (ref.record_id, NEW, 2) for ref in [MARIA, *others]
    }
    assert not Change.with_in_flight.filter(in_flight=True).exists()
    assert set(Proposal.objects.values_list("status", flat=True)) == {ProposalStatus.APPLIED}
    assert AuditEvent.objects.filter(action="change.applied", new_value=NEW).count() == 4
    # Each record's last sighting is the write, so reading them again reports nothing outside.
    assert {(s.record_id, s.version, s.values["shipping_address"]) for s in RecordSighting.objects.all()} == {
        (ref.record_id, 2, NEW) for ref in [MARIA, *others]
    }
    get_store("customer").fetch_many("customer", [ref.record_id for ref in [MARIA, *others]])
    assert not AuditEvent.objects.filter(action="record.changed_outside").exists()


def test_an_intent_in_flight_counts_toward_the_canary_cap(db, crm):
    workflow = WorkflowFactory(stage=Stage.CANARY, canary_daily_limit=1)
    first = approved(workflow=workflow)
    crm.refuse_writes = "timed out after 10s"  # the intent is stored, its write not known to have landed
    assert apply(first) == Outcome.RETRY
    crm.refuse_writes = ""
    second = ProposalFactory(
        workflow=workflow,
        status=ProposalStatus.APPROVED,
        record_id="CUS-20001",
        changes={"shipping_address": NEW},
        base={"shipping_address": OLD},
    )
    crm.create_many("customer", [("CUS-20001", {"full_name": "A", "shipping_address": OLD})])
    assert apply(second) == Outcome.WAITING
    assert crm.writes == 0
    assert apply(first) == Outcome.APPLIED
    assert held(crm) == (NEW, 2)


def _four_on_the_crm(crm: MemoryRecordStore) -> list[Proposal]:
    others = [RecordRef("customer", f"CUS-3000{n}") for n in range(3)]
    crm.create_many("customer", [(ref.record_id, {"full_name": "A", "shipping_address": OLD}) for ref in others])
    return [approved()] + [
        ProposalFactory(
            status=ProposalStatus.APPROVED,
            record_id=ref.record_id,
            changes={"shipping_address": NEW},
            base={"shipping_address": OLD},
        )
        for ref in others
    ]


def test_a_chunk_stores_its_intents_together_before_the_first_write(db, crm):
    proposals = _four_on_the_crm(crm)
    in_flight_at_each_write = []
    write = crm.write

    def watched(*args, **kwargs):  # type: ignore[no-untyped-def]
        in_flight_at_each_write.append(Change.with_in_flight.filter(in_flight=True).count())
        return write(*args, **kwargs)

    crm.write = watched  # type: ignore[method-assign]
    results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 4
    # One commit stored all four intents; the writes then went out one by one.
    assert in_flight_at_each_write == [4, 4, 4, 4]
    assert not Change.with_in_flight.filter(in_flight=True).exists()
    assert AuditEvent.objects.filter(action="change.applied", new_value=NEW).count() == 4


def test_a_stop_engaged_between_a_chunks_writes_drops_the_intents_not_yet_written(db, crm):
    proposals = _four_on_the_crm(crm)
    write = crm.write
    lead = UserFactory()

    def stopped_after_the_second(*args, **kwargs):  # type: ignore[no-untyped-def]
        written = write(*args, **kwargs)
        if crm.writes == 2:
            with transaction.atomic():
                stop_engage(scope=StopScope.GLOBAL, reason="the sweep is writing nonsense", actor=Actor.user(lead))
        return written

    crm.write = stopped_after_the_second  # type: ignore[method-assign]
    results = proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.STOPPED, Outcome.STOPPED]
    assert crm.writes == 2
    assert [crm.rows[RecordRef("customer", p.record_id)].values["shipping_address"] for p in proposals] == [
        NEW,
        NEW,
        OLD,
        OLD,
    ]
    # Nothing of the two held back is left in flight: they wait, approved, as any stopped proposal does.
    assert not Change.with_in_flight.filter(proposal_id__in=[p.pk for p in proposals[2:]]).exists()
    assert [Proposal.objects.get(pk=p.pk).status for p in proposals[2:]] == [ProposalStatus.APPROVED] * 2

    crm.write = write  # type: ignore[method-assign]
    switch = StopSwitch.objects.get(released_at__isnull=True)
    stop_release(switch=switch, user=UserFactory(username="ops"), note="pipeline fixed")
    assert [r.outcome for r in proposals_apply(proposal_ids=[p.pk for p in proposals], worker=WORKER)] == [
        Outcome.NOT_APPROVED,
        Outcome.NOT_APPROVED,
        Outcome.APPLIED,
        Outcome.APPLIED,
    ]
    assert crm.writes == 4
    assert AuditEvent.objects.filter(action="change.applied", new_value=NEW).count() == 4
