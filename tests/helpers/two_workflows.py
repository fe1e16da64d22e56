"""Two workflows, A and B, with everything the pages show of a workflow, and the people who look.

A (`address-updates`) changes customers' shipping addresses; its approver group is the lead's.
B (`refund-notes`) changes orders' refund status and customers' support notes; its approvers are
another team. Every value of B's records, proposals, batches, stops, overrides, undo jobs,
artifacts and events holds the marker `QXB`; A's hold `QXA`; a customer's internal notes, which no
workflow may read, hold `QXN`. A page shown to someone who may not see B must not hold `QXB`.

The people: `agent` (no rights; asks for changes), `lead` (approves A), `ops` (an ops manager, who
may stop and undo any workflow), `auditor` (the audit_trail and export_trail group permissions),
`root` (staff and superuser, in no group).
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from approvals.applying.services import Outcome, proposal_apply
from approvals.intake.accounts import service_account_create
from approvals.models import (
    Batch,
    FieldPolicy,
    Override,
    OverrideBlock,
    OverrideScope,
    Proposal,
    RollbackDrill,
    ServiceAccount,
    StopSwitch,
    TraceDrill,
    UndoJob,
    UndoScope,
    Workflow,
)
from approvals.review.services import proposal_approve
from approvals.undo.selectors import UndoSelection
from approvals.undo.services import undo_job_start
from approvals.workflows.loading import workflow_group_permissions_sync
from audit.models import Artifact
from audit.services import Actor
from records.models import Change, Customer, Order
from tests.helpers.factories import (
    ArtifactFactory,
    BatchFactory,
    CustomerFactory,
    GroupFactory,
    OrderFactory,
    ProposalFactory,
    RetentionRuleFactory,
    TicketFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.seeing import make_auditor

B_MARK = "QXB"
A_MARK = "QXA"
NOBODY_MARK = "QXN"
ROLES = ("anonymous", "agent", "lead", "ops", "auditor", "root")


@dataclass
class Side:
    """One workflow and what it produced."""

    workflow: Workflow
    batch: Batch
    applied: Proposal
    change: Change
    pending: Proposal


@dataclass
class TwoWorkflows:
    a: Side
    b: Side
    customer: Customer  # changed by both workflows
    order: Order  # changed by B only
    b_account: ServiceAccount
    b_stop: StopSwitch
    b_override: Override
    b_undo_job: UndoJob
    b_artifact: Artifact
    b_drill: TraceDrill
    b_rollback_drill: RollbackDrill
    people: dict[str, User]


def _applied(workflow: Workflow, approver: User, batch: Batch, **proposal: object) -> tuple[Proposal, Change]:
    applied = ProposalFactory(workflow=workflow, batch=batch, **proposal)
    proposal_approve(proposal=applied, reviewer=approver)
    assert proposal_apply(proposal_id=applied.pk, worker="worker@test/1").outcome == Outcome.APPLIED
    applied.refresh_from_db()
    return applied, Change.objects.get(proposal_id=applied.pk)


def _policies(workflow: Workflow, fields: dict[tuple[str, str], str]) -> None:
    for (record_type, field), access in fields.items():
        FieldPolicy.objects.update_or_create(
            workflow=workflow, record_type=record_type, field=field, defaults={"access": access}
        )


def two_workflows() -> TwoWorkflows:
    owner = UserFactory(username="owner")
    leads_a, leads_b, ops_managers = (GroupFactory(name=n) for n in ("support-leads", "finance-leads", "ops-managers"))
    people = {
        "agent": UserFactory(username="agent"),
        "lead": UserFactory(username="lead"),
        "ops": UserFactory(username="ops"),
        "auditor": make_auditor(UserFactory(username="auditor")),
        "root": UserFactory(username="root", is_staff=True, is_superuser=True),
    }
    people["lead"].groups.add(leads_a)
    people["ops"].groups.add(ops_managers)
    finance_lead = UserFactory(username="fin")
    finance_lead.groups.add(leads_b)

    a = WorkflowFactory(
        slug="address-updates", owner=owner, approver_group=leads_a, override_after_hours_group=ops_managers
    )
    b = WorkflowFactory(
        slug="refund-notes",
        owner=owner,
        approver_group=leads_b,
        override_day_group=leads_b,
        override_after_hours_group=leads_b,
    )
    for workflow in (a, b):
        workflow_group_permissions_sync(workflow=workflow)
    _policies(a, {("customer", "full_name"): "read", ("customer", "shipping_address"): "suggest"})
    _policies(
        b,
        {
            ("order", "order_number"): "read",
            ("order", "refund_status"): "suggest",
            ("customer", "support_notes"): "suggest",
        },
    )

    customer = CustomerFactory(
        full_name="Morag Fraser",
        shipping_address="4 Old Mill Lane, Leith",
        support_notes=f"{B_MARK} asked twice about a refund",
        internal_notes=f"{NOBODY_MARK} flagged by the fraud team",
    )
    order = OrderFactory(customer=customer, order_number=f"#{B_MARK}-990001", refund_status="requested")
    TicketFactory(customer=customer, subject="Where is my refund?")

    a_batch = BatchFactory(workflow=a, name=f"{A_MARK} address sweep")
    a_applied, a_change = _applied(
        a,
        people["lead"],
        a_batch,
        record_id=customer.record_id,
        changes={"shipping_address": f"12 Harbour Road {A_MARK}"},
        base={"shipping_address": "4 Old Mill Lane, Leith"},
        reason=f"{A_MARK} the customer wrote in with a new address",
        prompt_version=f"address@{A_MARK}",
    )
    a_pending = ProposalFactory(
        workflow=a, batch=a_batch, record_id=customer.record_id, reason=f"{A_MARK} another move", requested_by="agent"
    )

    b_batch = BatchFactory(workflow=b, name=f"{B_MARK} nightly refunds")
    # B's pipeline runs for someone in the finance team: the agent asked for none of B's proposals.
    b_common = {"prompt_version": f"refund@{B_MARK}", "model_name": f"model-{B_MARK}", "requested_by": "maria"}
    b_applied, b_change = _applied(
        b,
        finance_lead,
        b_batch,
        record_type="order",
        record_id=order.record_id,
        changes={"refund_status": "approved"},
        base={"refund_status": "requested"},
        reason=f"{B_MARK} refund agreed in the email of 3 May",
        **b_common,
    )
    _applied(
        b,
        finance_lead,
        b_batch,
        record_id=customer.record_id,
        changes={"support_notes": f"{B_MARK} refund paid, customer content"},
        base={"support_notes": f"{B_MARK} asked twice about a refund"},
        reason=f"{B_MARK} note the refund",
        **b_common,
    )
    b_pending = ProposalFactory(
        workflow=b,
        batch=b_batch,
        record_type="order",
        record_id=order.record_id,
        changes={"refund_status": "refunded"},
        base={"refund_status": "approved"},
        reason=f"{B_MARK} money went out",
        **b_common,
    )
    b_artifact = ArtifactFactory(
        rule=RetentionRuleFactory(workflow=b, owner=owner),
        proposal_id=b_applied.pk,
        name=f"{B_MARK}-prompt.txt",
        content=f"{B_MARK} the prompt that read the refund email",
    )
    b_account = service_account_create(workflow=b, name=f"{B_MARK}-pipeline", actor=Actor.system("test")).account
    b_override = Override.objects.create(
        workflow=b,
        scope=OverrideScope.WORKFLOW,
        block=OverrideBlock.STOP_SWITCH,
        reason=f"{B_MARK} let the refunds through tonight",
        granted_by=finance_lead,
        granted_group=leads_b.name,
        expires_at=timezone.now() + timedelta(hours=1),
    )
    b_undo_job = undo_job_start(
        selection=UndoSelection(scope=UndoScope.BATCH, batch=b_batch),
        actor=Actor.user(people["ops"]),
        user=people["ops"],
        reason=f"{B_MARK} the refunds run was wrong",
        queue=False,
    )
    assert b_undo_job.stop is not None  # a bulk undo of a batch stops the batch first
    b_drill = TraceDrill.objects.create(
        workflow=b,
        user=people["ops"],
        change_id=b_change.id,
        complaint=f"The customer on order {order.record_id} says its refund status changed this morning.",
        target=b.trace_target,
        started_by="ops",
    )
    b_rollback_drill = RollbackDrill.objects.create(
        workflow_slug=b.slug,
        records=2,
        changes=2,
        passed=True,
        finished_at=timezone.now(),
        timings={"stop": 0.1, "undo": 0.4, "check": 0.2},
        report=f"Rollback drill of {b.slug} ({B_MARK}): 2 records restored",
        ran_by="ops",
    )
    return TwoWorkflows(
        a=Side(a, a_batch, a_applied, a_change, a_pending),
        b=Side(b, b_batch, b_applied, b_change, b_pending),
        customer=customer,
        order=order,
        b_account=b_account,
        b_stop=b_undo_job.stop,
        b_override=b_override,
        b_undo_job=b_undo_job,
        b_artifact=b_artifact,
        b_drill=b_drill,
        b_rollback_drill=b_rollback_drill,
        people=people,
    )
