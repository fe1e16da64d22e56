"""The circuit breaker per prompt version: it trips over its limit and not before, names what it
counted, stops the workflow on the trail, tells people, marks the queue, and only a person releases it."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import Notice, Proposal, ProposalStatus, RollbackDrill, StopScope, StopSwitch, Workflow
from approvals.review.services import proposal_approve, proposal_reject
from approvals.stops.breaker import breaker_check, breaker_tally, percents
from approvals.stops.services import stop_engage, stop_release_by_person
from approvals.undo.services import undo_change
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import NotAllowed
from records.models import Change
from tests.helpers.breaker import VERSION, history, set_breaker
from tests.helpers.factories import FieldPolicyFactory, ProposalFactory, UserFactory


def reject_one(workflow: Workflow, reviewer, version: str = VERSION) -> Proposal:  # type: ignore[no-untyped-def]
    proposal = ProposalFactory(workflow=workflow, prompt_version=version)
    proposal_reject(proposal=proposal, reviewer=reviewer, reason="the ticket asked for another address")
    return proposal


def breaker_stop() -> StopSwitch | None:
    return StopSwitch.objects.filter(released_at__isnull=True).exclude(breaker_prompt_version="").first()


def test_a_reject_rate_equal_to_its_limit_does_not_trip_and_one_over_it_does(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, approved=16, rejected=3)
    reject_one(workflow, lead)  # 4 of 20: 20%, the limit itself
    assert not StopSwitch.objects.exists()
    reject_one(workflow, lead)  # 5 of 21: 24%
    switch = breaker_stop()
    assert switch is not None
    assert (switch.scope, switch.workflow_id, switch.engaged_by_label, switch.breaker_prompt_version) == (
        StopScope.WORKFLOW,
        workflow.pk,
        "the circuit breaker",
        VERSION,
    )
    assert switch.reason == (
        "circuit breaker: prompt version address-update@9 rejected at 24%, over its limit of 20%: "
        "5 of its last 21 decided proposals in address-updates"
    )


def test_the_trip_is_on_the_trail_and_people_are_told(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, approved=15, rejected=4)
    reject_one(workflow, lead)  # 5 of 20: 25%
    switch = breaker_stop()
    assert switch is not None
    event = AuditEvent.objects.get(action="stop.engaged")
    assert (event.actor_kind, event.actor_label, event.workflow_slug, event.prompt_version) == (
        "system",
        "the circuit breaker",
        "address-updates",
        VERSION,
    )
    assert event.reason == switch.reason
    counted = event.details["circuit_breaker"]
    assert (counted["limit"], counted["count"], counted["of"], counted["maximum"]) == ("max_reject_rate", 5, 20, 0.2)
    assert (counted["decided"], counted["rejected"], counted["window"]) == (20, 5, 200)
    assert event.details["stop_id"] == switch.pk
    notice = Notice.objects.get(event="circuit_tripped")
    assert (notice.workflow_id, notice.dedupe_key) == (workflow.pk, f"circuit:{switch.pk}")
    assert "address-update@9" in notice.subject and "25%" in notice.subject and "20%" in notice.subject
    assert switch.reason in notice.body


def test_below_min_samples_it_does_not_trip_however_bad_the_rate(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, rejected=18)
    reject_one(workflow, lead)  # 19 of 19 rejected, one short of the 20 samples
    assert not StopSwitch.objects.exists()
    reject_one(workflow, lead)
    assert breaker_stop() is not None


def test_only_the_last_window_of_decisions_counts(workflow, lead):
    workflow.circuit_breaker = {"window": 20, "min_samples": 20, "max_reject_rate": 0.2}
    workflow.save(update_fields=["circuit_breaker"])
    history(workflow, ago=timedelta(days=2), rejected=30)  # long ago, outside the window
    history(workflow, approved=19)
    reject_one(workflow, lead)  # the last 20: 1 rejected
    assert not StopSwitch.objects.exists()


def test_each_prompt_version_is_judged_on_its_own(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, version="address-update@8", rejected=20)
    history(workflow, approved=19)
    reject_one(workflow, lead)
    assert not StopSwitch.objects.exists()


def test_what_counts_as_decided(workflow):
    history(
        workflow,
        approved=1,
        applied=2,
        rejected=3,
        conflict=4,
        failed=1,
        reverted=2,
        pending=5,
        shadowed=5,
        expired=5,
        cancelled=5,
    )
    tally = breaker_tally(workflow=workflow, prompt_version=VERSION, window=200, since=None)
    assert (tally.decided, tally.rejected, tally.conflicts, tally.applied, tally.undone) == (13, 3, 4, 4, 2)
    narrow = breaker_tally(workflow=workflow, prompt_version=VERSION, window=5, since=None)
    assert narrow.decided == 5


def test_approving_can_bring_the_samples_up_to_the_minimum_and_trip(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, approved=9, rejected=10)
    assert not StopSwitch.objects.exists()
    proposal = ProposalFactory(workflow=workflow, prompt_version=VERSION)
    proposal_approve(proposal=proposal, reviewer=lead)
    switch = breaker_stop()
    assert switch is not None and "rejected at 50%, over its limit of 20%: 10 of its last 20" in switch.reason


def test_the_undo_rate_counts_changes_written_and_trips_on_an_undo(workflow, lead):
    set_breaker(workflow, max_undo_rate=0.04)
    history(workflow, applied=19, rejected=40)
    proposal = ProposalFactory(workflow=workflow, prompt_version=VERSION, status=ProposalStatus.APPROVED)
    Proposal.objects.filter(pk=proposal.pk).update(decided_at=timezone.now())
    assert proposal_apply(proposal_id=proposal.pk, worker="worker@test/1").outcome == Outcome.APPLIED
    assert not StopSwitch.objects.exists()
    undo_change(change=Change.objects.get(proposal_id=proposal.pk), actor=Actor.user(lead), reason="wrong address")
    switch = breaker_stop()
    assert switch is not None
    assert switch.reason == (
        "circuit breaker: prompt version address-update@9 undone at 5%, over its limit of 4%: "
        "1 of the 20 changes it wrote among its last 60 decided proposals in address-updates"
    )


def test_a_workflow_already_stopped_is_left_as_it_is_and_the_decision_stands(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, rejected=19)
    person = stop_engage(scope=StopScope.WORKFLOW, reason="looking into it", actor=Actor.user(lead), workflow=workflow)
    proposal = reject_one(workflow, lead)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert list(StopSwitch.objects.filter(released_at__isnull=True)) == [person]
    assert not Notice.objects.filter(event="circuit_tripped").exists()


def test_a_workflow_without_a_breaker_is_never_stopped_and_costs_no_query(workflow, lead, django_assert_num_queries):
    history(workflow, rejected=50)
    with django_assert_num_queries(0):
        assert breaker_check(workflow=workflow, prompt_version=VERSION) is None
    reject_one(workflow, lead)
    assert not StopSwitch.objects.exists()


def test_a_rollback_drill_as_the_workflow_undoes_all_it_wrote_and_trips_nothing(workflow):
    set_breaker(workflow, max_undo_rate=0.05, min_samples=5)
    FieldPolicyFactory(workflow=workflow, field="shipping_address", access="suggest")
    call_command("rollback_drill", "--workflow", workflow.slug, "--records", "6", stdout=StringIO())
    assert RollbackDrill.objects.get().passed
    assert Proposal.objects.filter(workflow=workflow, status=ProposalStatus.REVERTED).count() == 6
    assert not StopSwitch.objects.filter(released_at__isnull=True).exists()
    assert not StopSwitch.objects.exclude(breaker_prompt_version="").exists()
    assert not Notice.objects.filter(event="circuit_tripped").exists()


def test_only_a_person_releases_it_and_it_judges_again_only_on_new_decisions(workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2, min_samples=5)
    history(workflow, rejected=4)
    reject_one(workflow, lead)
    first = breaker_stop()
    assert first is not None
    with pytest.raises(NotAllowed):
        stop_release_by_person(switch=first, user=UserFactory(username="bystander"))
    stop_release_by_person(switch=first, user=workflow.owner, note="prompt checked")
    released = AuditEvent.objects.get(action="stop.released")
    assert (released.actor_kind, released.actor_label) == ("user", workflow.owner.get_username())
    # The five rejections that tripped it are behind the release: four new ones are too few to judge.
    for _ in range(4):
        reject_one(workflow, lead)
    assert breaker_stop() is None
    reject_one(workflow, lead)
    again = breaker_stop()
    assert again is not None and again.pk != first.pk
    assert again.reason == (
        "circuit breaker: prompt version address-update@9 rejected at 100%, over its limit of 20%: "
        "5 of its last 5 decided proposals in address-updates since the breaker was last released"
    )
    assert Notice.objects.filter(event="circuit_tripped").count() == 2


def test_the_release_page_releases_it_for_the_owner(client, workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, rejected=19)
    reject_one(workflow, lead)
    switch = breaker_stop()
    assert switch is not None
    client.force_login(lead)
    page = client.get(reverse("review-queue")).content.decode()
    assert "engaged by <strong>the circuit breaker</strong>" in page
    assert "prompt version address-update@9 rejected at 100%, over its limit of 20%: 20 of its last 20" in page
    client.force_login(workflow.owner)
    response = client.post(reverse("stop-release", args=[switch.pk]), {"note": "prompt rolled back", "next": "/"})
    assert response.status_code == 302
    switch.refresh_from_db()
    assert switch.released_at is not None and switch.released_by == workflow.owner


def test_the_queue_marks_pending_proposals_of_the_tripped_version_only(client, workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, rejected=19)
    reject_one(workflow, lead)
    assert breaker_stop() is not None
    marked = ProposalFactory(workflow=workflow, prompt_version=VERSION)
    other = ProposalFactory(workflow=workflow, prompt_version="address-update@8")
    client.force_login(lead)
    html = client.get(reverse("review-queue")).content.decode()
    rows = {row.split('href="/review/')[1].split("/")[0]: row for row in html.split("<tr data-row>")[1:]}
    assert "breaker tripped for this prompt version" in rows[str(marked.pk)]
    assert "breaker tripped for this prompt version" not in rows[str(other.pk)]


@pytest.mark.parametrize("size", [2, 12])
def test_the_marked_queue_keeps_its_fixed_number_of_queries(client, workflow, lead, size):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, rejected=19)
    reject_one(workflow, lead)
    for _ in range(size):
        ProposalFactory(workflow=workflow, prompt_version=VERSION)
    client.force_login(lead)
    client.get(reverse("review-queue"))
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("review-queue"))
    for _ in range(size):
        ProposalFactory(workflow=workflow, prompt_version=VERSION)
    with CaptureQueriesContext(connection) as large:
        html = client.get(reverse("review-queue")).content.decode()
    assert html.count("breaker tripped for this prompt version") == 2 * size
    assert len(large.captured_queries) == len(small.captured_queries)


def test_percentages_show_enough_decimals_to_differ_from_the_limit():
    assert percents(0.35, 0.2) == ("35%", "20%")
    assert percents(41 / 200, 0.2) == ("20.5%", "20.0%")
    assert percents(0.051, 0.05) == ("5.1%", "5.0%")


@pytest.mark.postgres
def test_rejections_at_the_same_moment_engage_one_stop_and_tell_people_once(transactional_db, workflow, lead):
    set_breaker(workflow, max_reject_rate=0.2)
    history(workflow, approved=10, rejected=10)
    proposals = [ProposalFactory(workflow=workflow, prompt_version=VERSION) for _ in range(3)]
    barrier = threading.Barrier(len(proposals))
    outcomes: list = [None] * len(proposals)

    def reject(index: int) -> None:
        try:
            barrier.wait()
            outcomes[index] = proposal_reject(proposal=proposals[index], reviewer=lead, reason="wrong address")
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=reject, args=(index,)) for index in range(len(proposals))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)], outcomes
    assert Proposal.objects.filter(pk__in=[p.pk for p in proposals], status=ProposalStatus.REJECTED).count() == 3
    assert StopSwitch.objects.filter(workflow=workflow).count() == 1
    assert AuditEvent.objects.filter(action="stop.engaged").count() == 1
    assert Notice.objects.filter(event="circuit_tripped").count() == 1
