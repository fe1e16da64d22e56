"""`load_workflows` moves a workflow to a later stage only while every check that stage needs passes;
it names each failing check, or, with --force-stage, a reason and a person allowed to, records the
forced move. Moving back or pausing is always allowed."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from approvals.models import Stage, Workflow
from approvals.workflows import stage_gate
from audit.models import AuditEvent
from tests.helpers.factories import GroupFactory, UserFactory
from tests.helpers.readiness import OUTSIDE_SERVICES, SYSTEMS, five_step_review, rollback_drill, trace_drill

pytestmark = pytest.mark.django_db

REASON = "The pilot customers need it before the review can be scheduled"
WORKFLOW = {
    "slug": "address-updates",
    "name": "Address updates",
    "owner": "owner",
    "lane": "write",
    "stage": "draft",
    "approvers": "support-leads",
    "overrides": {
        "day": {"group": "support-leads", "days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:00", "to": "18:00"},
        "after_hours": {"group": "ops-managers"},
    },
    "actions": ["update"],
    "fields": {"customer": {"full_name": "read", "shipping_address": "suggest"}},
    "systems": SYSTEMS,
    "outside_services": OUTSIDE_SERVICES,
    "retention": {"prompt": {"live": "7d"}},
    "retention_co_owner": "security",
}


@pytest.fixture(autouse=True)
def people(db):  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner")
    UserFactory(username="security")
    UserFactory(username="lead").groups.add(GroupFactory(name="support-leads"))
    UserFactory(username="ops").groups.add(GroupFactory(name="ops-managers"))
    return owner


def _load(tmp_path: Path, *arguments: str, **changes: object) -> str:
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": [{**WORKFLOW, **changes}]}))
    call_command("load_workflows", str(path), *arguments)
    return str(path)


def _refused(tmp_path: Path, *arguments: str, **changes: object) -> str:
    with pytest.raises(CommandError) as refused:
        _load(tmp_path, *arguments, **changes)
    return str(refused.value)


def _forced(reason: str = REASON, user: str = "owner") -> tuple[str, ...]:
    return ("--force-stage", "--reason", reason, "--user", user)


def _workflow() -> Workflow:
    return Workflow.objects.get(slug="address-updates")


def test_a_new_workflow_beyond_draft_is_refused_naming_each_failing_check_and_nothing_is_loaded(tmp_path):
    message = _refused(tmp_path, stage="live", systems=[], retention_co_owner=None)

    assert message.startswith("nothing loaded:")
    assert (
        "workflow 'address-updates': stage: moving from draft to live needs check 1, every field it reads, "
        "suggests or writes has a policy, and its systems and outside services are declared: "
        "No system is declared" in message
    )
    for number in (3, 6, 7, 8, 9):
        assert f"needs check {number}, " in message
    for number in (2, 4, 5):
        assert f"needs check {number}, " not in message
    assert not Workflow.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="workflow.").exists()


def test_a_workflow_rises_stage_by_stage_as_its_evidence_comes_in_and_each_step_is_on_the_trail(tmp_path):
    _load(tmp_path)
    _load(tmp_path, stage="shadow")
    assert _workflow().stage == Stage.SHADOW

    message = _refused(tmp_path, stage="canary")
    assert [f"needs check {n}," in message for n in (4, 6, 8)] == [False, True, True]
    assert _workflow().stage == Stage.SHADOW

    rollback_drill(_workflow())
    five_step_review(_workflow())
    _load(tmp_path, stage="canary")
    assert "needs check 9, it spent its canary days in canary" in _refused(tmp_path, stage="live")

    Workflow.objects.filter(slug="address-updates").update(stage_changed_at=timezone.now() - timedelta(days=3, hours=1))
    trace_drill(_workflow())
    _load(tmp_path, stage="live")

    assert _workflow().stage == Stage.LIVE and _workflow().forced_stage is None
    promoted = AuditEvent.objects.filter(action="workflow.promoted").order_by("id")
    assert [(e.old_value, e.new_value) for e in promoted] == [
        ({"stage": "draft"}, {"stage": "shadow"}),
        ({"stage": "shadow"}, {"stage": "canary"}),
        ({"stage": "canary"}, {"stage": "live"}),
    ]
    assert promoted.last().details == {"checks_passed": list(range(1, 10)), "source": "file"}  # type: ignore[union-attr]


def test_a_forced_stage_is_recorded_with_its_reason_and_failing_checks_and_marked_on_the_workflows_page(
    tmp_path, client, people
):
    _load(tmp_path, *_forced(), stage="canary", retention_co_owner=None)

    workflow = _workflow()
    assert workflow.stage == Stage.CANARY
    assert workflow.forced_stage is not None
    assert {k: workflow.forced_stage[k] for k in ("stage", "reason", "by")} == {
        "stage": "canary",
        "reason": REASON,
        "by": "owner",
    }
    event = AuditEvent.objects.get(action="workflow.stage_forced")
    assert (event.actor_label, event.reason, event.old_value, event.new_value) == (
        "owner",
        REASON,
        {"stage": "draft"},
        {"stage": "canary"},
    )
    assert [failing["number"] for failing in event.details["failing"]] == [3, 6, 8]
    client.force_login(people)
    assert "Released against readiness" in client.get(reverse("workflow-list")).content.decode()
    page = client.get(reverse("workflow-readiness", args=["address-updates"])).content.decode()
    assert "Released against readiness:" in page and REASON in page


def test_the_mark_goes_once_the_checks_of_the_forced_stage_pass_and_a_later_promotion_clears_the_force(
    tmp_path, client, people
):
    _load(tmp_path, *_forced(), stage="shadow", retention_co_owner=None)
    client.force_login(people)
    assert "Released against readiness" in client.get(reverse("workflow-list")).content.decode()

    _load(tmp_path, stage="shadow")
    assert _workflow().forced_stage is not None
    assert "Released against readiness" not in client.get(reverse("workflow-list")).content.decode()

    rollback_drill(_workflow())
    five_step_review(_workflow())
    _load(tmp_path, stage="canary")
    assert _workflow().forced_stage is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (_forced(reason="because"), "reason: write at least 10 characters saying why the workflow moves on"),
        (_forced(user="lead"), "stage: lead may not force it: only its owner or an ops manager"),
        (("--force-stage", "--user", "owner"), "--force-stage needs --reason TEXT and --user NAME"),
        (("--reason", REASON), "--reason goes with --force-stage"),
        (_forced(user="nobody"), "--user: no active user 'nobody'"),
    ],
)
def test_a_force_needs_a_reason_and_the_owner_or_an_ops_manager(tmp_path, arguments, message):
    assert message in _refused(tmp_path, *arguments, stage="live")
    assert not Workflow.objects.exists()


def test_an_ops_manager_may_force_a_stage(tmp_path):
    _load(tmp_path, *_forced(user="ops"), stage="shadow", systems=[])
    assert _workflow().forced_stage["by"] == "ops"  # type: ignore[index]


def test_a_force_changes_nothing_when_the_checks_pass(tmp_path):
    _load(tmp_path, *_forced(), stage="shadow")
    assert _workflow().forced_stage is None
    assert AuditEvent.objects.filter(action="workflow.promoted").exists()
    assert not AuditEvent.objects.filter(action="workflow.stage_forced").exists()


def test_moving_back_or_pausing_needs_no_check_and_leaves_the_forced_stage_behind(tmp_path):
    _load(tmp_path, *_forced(), stage="live", systems=[])
    _load(tmp_path, stage="canary", systems=[])
    workflow = _workflow()
    assert (workflow.stage, workflow.forced_stage) == (Stage.CANARY, None)
    _load(tmp_path, stage="paused", systems=[])
    _load(tmp_path, stage="draft", systems=[])
    changes = AuditEvent.objects.filter(action="workflow.changed", old_value__has_key="stage").order_by("id")
    assert [(e.old_value["stage"], e.new_value["stage"]) for e in changes] == [  # type: ignore[index]
        ("live", "canary"),
        ("canary", "paused"),
        ("paused", "draft"),
    ]


def test_out_of_a_pause_a_workflow_needs_the_checks_of_the_stage_it_resumes(tmp_path):
    _load(tmp_path, *_forced(), stage="paused", systems=[])
    assert "moving from paused to shadow needs check 1" in _refused(tmp_path, stage="shadow", systems=[])
    _load(tmp_path, stage="shadow")
    assert _workflow().stage == Stage.SHADOW


def test_without_a_gate_installed_no_workflow_changes_stage(tmp_path, monkeypatch):
    monkeypatch.setattr(stage_gate, "_gate", [])
    assert "workflow 'address-updates': stage: no readiness gate is installed" in _refused(tmp_path, stage="shadow")
    _load(tmp_path)
    assert _workflow().stage == Stage.DRAFT


def test_a_short_reason_for_a_file_of_several_workflows_is_refused_once(tmp_path):
    path = tmp_path / "workflows.yaml"
    second = {**WORKFLOW, "slug": "second", "stage": "live"}
    path.write_text(yaml.safe_dump({"workflows": [{**WORKFLOW, "stage": "live"}, second]}))
    with pytest.raises(CommandError) as refused:
        call_command("load_workflows", str(path), *_forced(reason="now"))
    assert str(refused.value).count("reason: write at least 10 characters") == 1
    assert not Workflow.objects.exists()
