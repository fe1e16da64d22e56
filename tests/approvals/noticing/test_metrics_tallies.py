"""The running totals behind `/metrics`: folded in steps at each scrape, they equal a recount of the
whole trail from scratch, they never go down, and two scrapes at once never count an event twice."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection, transaction

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import MetricsCursor, MetricsTally, Proposal, Stage
from approvals.noticing.tallies import Tallies, tallies_catch_up, tallies_fold, tallies_read
from approvals.review.services import proposal_approve, proposal_reject
from audit.models import AuditEvent
from tests.approvals.noticing.scraping import TOKEN, scrape
from tests.helpers.factories import FieldPolicyFactory
from tests.helpers.pipeline import POLICIES, Pipeline, make_pipeline
from tests.helpers.releases import submit
from tests.helpers.sight import looked_at

V8 = {"workflow": "address-updates", "prompt_version": "address-update@8"}


@pytest.fixture
def pipeline(workflow) -> Pipeline:  # type: ignore[no-untyped-def]
    for (record_type, field), access in POLICIES.items():
        FieldPolicyFactory(workflow=workflow, record_type=record_type, field=field, access=access)
    workflow.stage = Stage.CANARY
    workflow.canary_daily_limit = 100
    workflow.save(update_fields=["stage", "canary_daily_limit"])
    return make_pipeline(workflow)


def _approve(proposals: list[Proposal], lead) -> list[int]:  # type: ignore[no-untyped-def]
    for proposal in proposals:
        proposal.refresh_from_db()
        proposal_approve(proposal=proposal, reviewer=lead, shown_token=looked_at(proposal, lead)["shown"])
    return [proposal.pk for proposal in proposals]


def _reject(proposals: list[Proposal], lead) -> None:  # type: ignore[no-untyped-def]
    for proposal in proposals:
        proposal.refresh_from_db()
        proposal_reject(
            proposal=proposal, reviewer=lead, reason="Wrong customer", shown_token=looked_at(proposal, lead)["shown"]
        )


def _apply(ids: list[int]) -> None:
    assert [result.outcome for result in proposals_apply(proposal_ids=ids, worker="w")] == [Outcome.APPLIED] * len(ids)


def _recounted() -> Tallies:
    """The totals folded again from the trail's first event."""
    MetricsTally.objects.all().delete()
    MetricsCursor.objects.filter(pk=1).update(audit_event_id=0)
    tallies_catch_up(seconds=60)
    return tallies_read()


def _each_step(lead, pipeline) -> list[Callable[[], object]]:  # type: ignore[no-untyped-def]
    """Work that appends outcomes, decisions and applies to the trail, in steps."""
    first = submit(pipeline, 5)
    second: list[Proposal] = []

    def more() -> None:
        second.extend(submit(pipeline, 3, "address-update@9"))

    return [
        lambda: _approve(first[:3], lead),
        lambda: _reject(first[3:], lead),
        lambda: _apply([p.pk for p in first[:2]]),
        more,
        lambda: _apply([*_approve(second[:2], lead), first[2].pk]),
    ]


def test_totals_folded_at_each_step_equal_a_recount_from_scratch_and_never_go_down(db, lead, pipeline, settings):
    settings.METRICS_TOKEN = TOKEN
    steps = _each_step(lead, pipeline)
    previous = scrape()
    for step in steps:
        step()
        now = scrape()
        for key, value in previous.samples.items():
            if key[0] in ("countersign_proposals_total", "countersign_decision_time_seconds_count"):
                assert now.samples[key] >= value, key
        previous = now

    assert previous.value("countersign_proposals_total", outcome="submitted", **V8) == 5
    assert previous.value("countersign_proposals_total", outcome="approved_by_person", **V8) == 3
    assert previous.value("countersign_proposals_total", outcome="rejected", **V8) == 2
    assert previous.value("countersign_proposals_total", outcome="applied", **V8) == 3
    assert previous.value("countersign_decision_time_seconds_count", **V8) == 5
    assert previous.value("countersign_apply_lag_seconds_count", **V8) == 3
    v9 = {**V8, "prompt_version": "address-update@9"}
    assert previous.value("countersign_proposals_total", outcome="submitted", **v9) == 3
    assert previous.value("countersign_proposals_total", outcome="applied", **v9) == 2
    assert previous.value("countersign_proposals_pending", **v9) == 1

    in_steps = tallies_read()
    assert in_steps.outcomes and in_steps.decision_time and in_steps.apply_lag
    assert _recounted() == in_steps


def test_a_scrape_with_nothing_new_changes_nothing_and_the_cursor_stops_at_the_trails_head(db, lead, pipeline):
    _approve(submit(pipeline, 2), lead)
    head = tallies_fold().upto
    assert head == AuditEvent.objects.order_by("-id").values_list("id", flat=True)[0]
    once = tallies_read()
    assert tallies_fold().upto == head
    assert tallies_read() == once
    assert once.outcomes[("address-updates", "address-update@8")]["approved_by_person"] == 2


@pytest.mark.postgres
def test_a_scrape_waits_for_a_fold_under_way_and_counts_nothing_twice(transactional_db, lead, pipeline):
    submit(pipeline, 4)
    folded: list[int] = []

    def second_scrape() -> None:
        try:
            folded.append(tallies_fold().upto)
        finally:
            connection.close()

    with transaction.atomic():
        tallies_fold()  # holds the cursor row until this transaction ends
        other = threading.Thread(target=second_scrape)
        other.start()
        other.join(timeout=1)
        assert other.is_alive(), "the second scrape must wait for the fold under way"
    other.join(timeout=30)
    assert not other.is_alive() and len(folded) == 1
    assert tallies_read().outcomes[("address-updates", "address-update@8")]["submitted"] == 4


@pytest.mark.postgres
def test_many_scrapes_at_once_while_proposals_arrive_count_each_event_once(transactional_db, lead, pipeline):
    start = threading.Barrier(5)
    failures: list[BaseException] = []

    def scraping() -> None:
        try:
            start.wait(timeout=30)
            for _ in range(6):
                tallies_fold()
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=scraping) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait(timeout=30)
    for _ in range(3):
        _reject(submit(pipeline, 2), lead)
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    tallies_fold()
    folded = tallies_read()
    counted = folded.outcomes[("address-updates", "address-update@8")]
    assert counted["submitted"] == AuditEvent.objects.filter(action="proposal.submitted").count() == 6
    assert counted["rejected"] == 6
    assert folded.decision_time[("address-updates", "address-update@8")].count == 6
    assert _recounted() == folded


def test_a_fold_takes_one_chunk_and_the_scrape_says_how_far_behind_the_totals_are(db, lead, pipeline, settings):
    settings.METRICS_TOKEN = TOKEN
    _reject(submit(pipeline, 4), lead)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    start, head = ids[0] - 1, ids[-1]
    MetricsCursor.objects.update_or_create(pk=1, defaults={"audit_event_id": start})

    first = tallies_fold(most=3)
    assert (first.since, first.upto, first.head, first.behind) == (start, ids[2], head, head - ids[2])
    assert tallies_fold(most=3).upto == ids[5]
    # A scrape folds one (default-sized) chunk, here the rest, and then says the totals are caught up.
    scraped = scrape()
    assert scraped.value("countersign_metrics_unfolded_events") == 0
    assert scraped.value("countersign_proposals_total", outcome="rejected", **V8) == 4
    assert _recounted() == tallies_read()


def test_beats_fold_catches_up_chunk_by_chunk_and_stops_when_its_time_is_spent(db, lead, pipeline):
    _approve(submit(pipeline, 3), lead)
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    start, head = ids[0] - 1, ids[-1]
    MetricsCursor.objects.update_or_create(pk=1, defaults={"audit_event_id": start})

    assert tallies_catch_up(seconds=0, most=2) == ids[1] - start  # out of time after its first chunk
    assert MetricsCursor.objects.get(pk=1).audit_event_id == ids[1]
    assert tallies_catch_up(seconds=60, most=2) == head - ids[1]
    assert MetricsCursor.objects.get(pk=1).audit_event_id == head
    assert tallies_read().outcomes[("address-updates", "address-update@8")]["approved_by_person"] == 3
    assert tallies_catch_up(seconds=60) == 0
