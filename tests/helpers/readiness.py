"""A workflow whose nine readiness checks all pass, and the evidence each check reads, to take away
one piece at a time."""

import uuid
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from approvals.models import (
    FieldPolicy,
    ReadinessReview,
    RetentionRule,
    RollbackDrill,
    Stage,
    TraceDrill,
    Workflow,
)
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import OnCall, on_call_workflow

SYSTEMS = [
    {"name": "Help desk", "direction": "to_ai", "fields": ["customer.full_name"]},
    {"name": "CRM", "direction": "both", "fields": ["customer.shipping_address"]},
]
OUTSIDE_SERVICES = [
    {
        "name": "Hosted model API",
        "kind": "model_api",
        "region": "eu-west",
        "keeps": "30d",
        "sees": ["customer.full_name"],
    }
]
DRILL_REPORT = "Rollback drill of address-updates: 20 records, 20 changes; every record restored."


def rollback_drill(workflow: Workflow, *, days_ago: float = 1, passed: bool = True, **timings: float) -> RollbackDrill:
    finished = timezone.now() - timedelta(days=days_ago)
    return RollbackDrill.objects.create(
        workflow_slug=workflow.slug,
        started_at=finished - timedelta(seconds=30),
        finished_at=finished,
        passed=passed,
        records=20,
        changes=20,
        timings=timings or {"stop": 0.4, "undo": 21.0, "check": 3.5},
        problems=[] if passed else ["CUS-1 still holds the drill's address"],
        report=DRILL_REPORT,
        ran_by="ops",
    )


def trace_drill(workflow: Workflow, *, days_ago: float = 2, passed: bool = True) -> TraceDrill:
    finished = timezone.now() - timedelta(days=days_ago)
    return TraceDrill.objects.create(
        workflow=workflow,
        user=workflow.owner,
        change_id=uuid.uuid4(),
        complaint="My address changed on its own last Tuesday",
        target=timedelta(minutes=5),
        started_at=finished - timedelta(minutes=3),
        finished_at=finished,
        passed=passed,
        started_by="ops",
    )


def five_step_review(workflow: Workflow, *, days_ago: float = 10, decision: str = "ready") -> ReadinessReview:
    signed = timezone.now() - timedelta(days=days_ago)
    return ReadinessReview.objects.create(
        workflow=workflow,
        started_by=workflow.owner,
        started_at=signed - timedelta(hours=1),
        decision=decision,
        decided_by=workflow.owner,
        signed_off_at=signed,
    )


def ready_workflow(*, stage: str = Stage.CANARY, canary_days_ago: float = 4, **fields: Any) -> OnCall:
    """The demo's on-call workflow with its map declared, retention owned by two people, a passed
    rollback drill, trace drill and five-step review, and four days in canary behind it."""
    security: User = UserFactory(username="security", first_name="Rae", last_name="Sato")
    on_call = on_call_workflow(
        stage=stage,
        stage_changed_at=timezone.now() - timedelta(days=canary_days_ago),
        systems=SYSTEMS,
        outside_services=OUTSIDE_SERVICES,
        retention_co_owner=security,
        **fields,
    )
    workflow = on_call.workflow
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="full_name", access="read")
    FieldPolicy.objects.create(workflow=workflow, record_type="customer", field="shipping_address", access="suggest")
    RetentionRule.objects.create(
        workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7), owner=on_call.owner
    )
    rollback_drill(workflow)
    trace_drill(workflow)
    five_step_review(workflow)
    return on_call
