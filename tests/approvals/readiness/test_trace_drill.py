"""The timed trace drill: what the complaint says and never says, which answers are right, the clock, who answers."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from approvals.models import Proposal, TraceDrill
from approvals.readiness.trace_drill import trace_drill_answer, trace_drill_start
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import InvalidTransition, NotAllowed, ValidationFailed
from tests.helpers.factories import ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.trace_drills import applied_change, right_answers
from tests.helpers.trail import revert

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # a Thursday
APPLIED = datetime(2026, 12, 2, 14, 14, 7, tzinfo=UTC)  # Wednesday afternoon: "yesterday afternoon"


@pytest.fixture
def change(workflow, second_lead):  # type: ignore[no-untyped-def]
    return applied_change(workflow=workflow, approver=second_lead, at=APPLIED)


def _start(workflow, user, **kwargs):  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW, tick=False):
        return trace_drill_start(workflow=workflow, user=user, started_by=Actor.user(user), **kwargs)


def _answer(drill, user, answers, *, after=timedelta(minutes=3)):  # type: ignore[no-untyped-def]
    with time_machine.travel(NOW + after, tick=False):
        return trace_drill_answer(drill=drill, user=user, answers=answers)


def test_the_complaint_names_the_record_what_changed_and_roughly_when(workflow, lead, change):
    drill = _start(workflow, lead)

    assert drill.complaint == "Customer CUS-10042 says their shipping address changed yesterday afternoon."
    assert (drill.change_id, drill.user, drill.target) == (change.id, lead, timedelta(minutes=5))
    assert drill.passed is None and drill.started_by == "lead"


def test_the_complaint_never_holds_the_change_id_the_values_or_the_approver(workflow, lead, second_lead):
    changes = [
        applied_change(
            workflow=workflow,
            approver=second_lead,
            at=APPLIED - timedelta(days=n),
            record_id=f"CUS-1004{n}",
            before=f"{n} Old Mill Lane",
            after=f"{n} Harbour Road",
        )
        for n in range(4)
    ]
    for _ in range(8):
        drill = _start(workflow, lead)
        change = next(c for c in changes if c.id == drill.change_id)
        told = drill.complaint.lower()
        for secret in (str(change.id), change.before["shipping_address"], change.after["shipping_address"]):
            assert secret.lower() not in told
        for name in ("sam", "okafor", "lead", "gpt-x", "address-update@7"):
            assert name not in told
        assert change.record_id.lower() in told


def test_the_time_is_said_in_the_zone_given(workflow, lead, change):
    # 14:14 UTC on Wednesday is 06:14 in Los Angeles, where it is now 08:00 on Thursday.
    drill = _start(workflow, lead, zone=ZoneInfo("America/Los_Angeles"))

    assert drill.complaint.endswith("changed yesterday morning.")


def test_every_answer_right_within_the_target_passes_and_is_on_the_trail(workflow, lead, change):
    drill = _start(workflow, lead)

    drill = _answer(drill, lead, right_answers(change), after=timedelta(minutes=4, seconds=30))

    drill.refresh_from_db()
    assert drill.passed is True
    assert drill.finished_at == NOW + timedelta(minutes=4, seconds=30)
    assert all(verdict["right"] for verdict in drill.verdicts.values())
    assert drill.verdicts["approver"]["holds"] == "Sam Okafor"
    assert drill.verdicts["before:shipping_address"]["holds"] == "4 Old Mill Lane, Leith"
    started = AuditEvent.objects.get(action="trace_drill.started")
    finished = AuditEvent.objects.get(action="trace_drill.finished")
    assert (started.workflow_slug, started.details["drill"], started.details["user"]) == (
        workflow.slug,
        drill.pk,
        "lead",
    )
    # While the drill runs, the trail does not point at the change or its record.
    assert (started.change_id, started.record_id) == (None, "")
    assert finished.reason == "passed"
    assert finished.details["seconds"] == 270.0 and finished.details["wrong"] == []
    assert finished.details["change_id"] == str(change.id)


def test_a_wrong_answer_fails_and_names_the_question(workflow, lead, change):
    drill = _start(workflow, lead)
    answers = right_answers(change) | {"approver": "Dana Lee"}

    drill = _answer(drill, lead, answers)

    assert drill.passed is False
    assert drill.verdicts["approver"] | {"position": 0} == {
        "position": 0,
        "question": "Who approved it?",
        "answer": "Dana Lee",
        "right": False,
        "holds": "Sam Okafor",
    }
    assert [key for key, verdict in drill.verdicts.items() if not verdict["right"]] == ["approver"]
    finished = AuditEvent.objects.get(action="trace_drill.finished")
    assert finished.reason == "failed: 1 wrong answer (approver)"
    assert finished.details["wrong"] == ["approver"] and finished.details["passed"] is False


def test_right_answers_over_the_target_fail(workflow, lead, change):
    drill = _start(workflow, lead)
    TraceDrill.objects.filter(pk=drill.pk).update(started_at=NOW - timedelta(minutes=6))

    drill = _answer(drill, lead, right_answers(change), after=timedelta(0))

    assert drill.passed is False
    assert all(verdict["right"] for verdict in drill.verdicts.values())
    assert AuditEvent.objects.get(action="trace_drill.finished").reason == "failed: over the target time"


def test_the_target_is_the_workflows(workflow, lead, change):
    workflow.trace_target = timedelta(minutes=10)
    workflow.save(update_fields=["trace_target"])

    drill = _answer(_start(workflow, lead), lead, right_answers(change), after=timedelta(minutes=8))

    assert drill.target == timedelta(minutes=10) and drill.passed is True


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("change", "http://testserver/trace/change/{id}/"),
        ("change", "  {ID}  "),
        ("before:shipping_address", "'4 old mill lane,  leith'"),
        ("after:shipping_address", "12 HARBOUR ROAD, LEITH"),
        ("approver", "sam"),
        ("approver", "sam okafor"),
        ("model", "gpt-x, version 2026-10-01"),
        ("prompt", "Address-Update@7"),
        ("undo", "https://countersign.example.com/changes/{id}/undo/"),
        ("undo", "python manage.py rollback --change {id}"),
    ],
)
def test_each_accepted_form_of_an_answer_is_right(workflow, lead, change, key, said):
    answers = right_answers(change) | {key: said.format(id=change.id, ID=str(change.id).upper())}

    drill = _answer(_start(workflow, lead), lead, answers)

    assert drill.verdicts[key]["right"] is True and drill.passed is True


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("change", "00000000-0000-4000-8000-000000000000"),
        ("before:shipping_address", "12 Harbour Road, Leith"),
        ("after:shipping_address", "12 Harbour Road"),
        ("approver", "Sam Okafor and Dana Lee"),
        ("model", "gpt-xl 2026-10-01"),
        ("model", "gpt-x"),
        ("prompt", "address-update@8"),
        ("undo", "manage.py rollback --change {id} --dry-run"),
        ("undo", "/changes/{id}/"),
    ],
)
def test_a_near_miss_is_wrong(workflow, lead, change, key, said):
    answers = right_answers(change) | {key: said.format(id=change.id)}

    drill = _answer(_start(workflow, lead), lead, answers)

    assert drill.verdicts[key]["right"] is False and drill.passed is False


def test_who_approved_is_read_from_the_trail_when_the_proposal_no_longer_names_them(workflow, lead, change):
    Proposal.objects.filter(pk=change.proposal_id).update(decided_by=None)

    drill = _answer(_start(workflow, lead), lead, right_answers(change, approver="sam okafor"))

    assert drill.verdicts["approver"]["holds"] == "Sam Okafor"
    assert drill.verdicts["approver"]["right"] is True


def test_a_change_applied_without_review_is_answered_no_one(workflow, lead):
    change = applied_change(workflow=workflow, approver=None, at=APPLIED)

    drill = _answer(_start(workflow, lead), lead, right_answers(change, approver="No one"))

    assert drill.verdicts["approver"]["holds"] == "no one (applied without review)"
    assert drill.passed is True


def test_only_the_drills_person_answers(workflow, lead, second_lead, change):
    drill = _start(workflow, lead)

    with pytest.raises(NotAllowed, match="only lead answers this drill"):
        _answer(drill, second_lead, right_answers(change))

    drill.refresh_from_db()
    assert drill.passed is None and drill.answers == {}
    assert not AuditEvent.objects.filter(action="trace_drill.finished").exists()


def test_a_drill_is_answered_once(workflow, lead, change):
    drill = _answer(_start(workflow, lead), lead, right_answers(change))

    with pytest.raises(InvalidTransition, match="already in"):
        _answer(drill, lead, right_answers(change) | {"approver": "Dana Lee"})

    drill.refresh_from_db()
    assert drill.passed is True


def test_blank_answers_are_refused_naming_each_question(workflow, lead, change):
    drill = _start(workflow, lead)
    answers = right_answers(change) | {"model": "  ", "undo": ""}

    with pytest.raises(ValidationFailed) as refused:
        _answer(drill, lead, answers)

    assert [field for field, _ in refused.value.problems] == ["model", "undo"]
    drill.refresh_from_db()
    assert drill.passed is None


def test_a_workflow_with_no_applied_change_is_refused(workflow, lead, second_lead):
    ProposalFactory(workflow=workflow, status="pending")
    undone = applied_change(workflow=workflow, approver=second_lead, at=APPLIED)
    revert(undone, at=APPLIED + timedelta(hours=1))  # the undo is a change too, and not one to trace

    with pytest.raises(InvalidTransition, match="address-updates has no applied change to trace yet"):
        _start(workflow, lead)

    assert not TraceDrill.objects.exists()
    assert not AuditEvent.objects.filter(action="trace_drill.started").exists()


def test_only_changes_of_the_workflow_are_picked(workflow, lead, second_lead):
    other = WorkflowFactory(slug="refund-notes")
    applied_change(workflow=other, approver=second_lead, at=APPLIED)

    with pytest.raises(InvalidTransition):
        _start(workflow, lead)


def test_a_person_who_cannot_see_the_workflow_is_not_drilled_on_it(workflow, change):
    stranger = UserFactory(username="stranger")

    with pytest.raises(NotAllowed, match="stranger cannot see workflow address-updates"):
        _start(workflow, stranger)


def test_a_new_drill_ends_the_open_one_as_failed(workflow, lead, change):
    first = _start(workflow, lead)

    second = _start(workflow, lead)

    first.refresh_from_db()
    assert (first.passed, first.finished_at, second.passed) == (False, NOW, None)
    ended = AuditEvent.objects.get(action="trace_drill.finished")
    assert ended.details["drill"] == first.pk and ended.reason == "failed: ended unanswered: a new drill was started"
    with pytest.raises(InvalidTransition):
        _answer(first, lead, right_answers(change))
