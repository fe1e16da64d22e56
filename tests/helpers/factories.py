"""Typed factory_boy factories for the models tests build: users, workflows, records, proposals, artifacts."""

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import factory
from django.contrib.auth.models import Group, User
from django.utils import timezone

from approvals.models import Batch, FieldPolicy, Lane, Proposal, RetentionRule, Stage, Workflow
from approvals.workflows.followups import EMAIL_TEMPLATES
from approvals.workflows.selectors import write_policy
from audit.models import Artifact
from records.catalogue import RECORD_TYPES, Risk
from records.models import Customer, Order, Ticket


class ModelFactory[ModelT](factory.django.DjangoModelFactory[ModelT]):
    """A Django model factory whose call, like its `create()`, is typed as the model it builds."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # factory_boy types only build() and create(); calling the factory goes through its metaclass,
        # which mypy does not follow (python/mypy#14122), so the call is declared here.
        def __new__(cls, **kwargs: Any) -> ModelT: ...  # type: ignore[misc]


class UserFactory(ModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Dana"
    last_name = factory.Sequence(lambda n: f"Lee{n}")
    password = factory.django.Password("pw")


class GroupFactory(ModelFactory[Group]):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


class WorkflowFactory(ModelFactory[Workflow]):
    class Meta:
        model = Workflow

    slug = factory.Sequence(lambda n: f"workflow-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    owner = factory.SubFactory(UserFactory)
    lane = Lane.WRITE
    stage = Stage.LIVE
    approver_group = factory.SubFactory(GroupFactory)
    actions = factory.LazyFunction(lambda: ["update"])
    # Every email a follow-up may send; tests of what a workflow file refuses set their own.
    follow_up_templates = factory.LazyFunction(lambda: {"email_customer": list(EMAIL_TEMPLATES)})


class FieldPolicyFactory(ModelFactory[FieldPolicy]):
    class Meta:
        model = FieldPolicy

    workflow = factory.SubFactory(WorkflowFactory)
    record_type = "customer"
    field = "shipping_address"
    access = "suggest"


class CustomerFactory(ModelFactory[Customer]):
    class Meta:
        model = Customer

    record_id = factory.Sequence(lambda n: f"CUS-{20000 + n}")
    full_name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = "+44 7700 900123"
    shipping_address = "4 Old Mill Lane, Leith"


class OrderFactory(ModelFactory[Order]):
    class Meta:
        model = Order

    record_id = factory.Sequence(lambda n: f"ORD-{60000 + n}")
    customer = factory.SubFactory(CustomerFactory)
    order_number = factory.Sequence(lambda n: f"#{990000 + n}")
    amount = "49.90"


class TicketFactory(ModelFactory[Ticket]):
    class Meta:
        model = Ticket

    record_id = factory.Sequence(lambda n: f"T-{9000 + n}")
    customer = factory.SubFactory(CustomerFactory)
    subject = "Where is my order?"


class BatchFactory(ModelFactory[Batch]):
    class Meta:
        model = Batch

    workflow = factory.SubFactory(WorkflowFactory)
    name = factory.Sequence(lambda n: f"bulk job {n}")
    run_id = factory.Sequence(lambda n: f"run-{n}")
    expected_size = 10


def open_workflow_to_proposal(proposal: Proposal, create: bool, extracted: bool | None, **kwargs: Any) -> None:
    """Open the fields and action to the proposal's workflow, as intake needs before it stores a proposal;
    `policy=False` leaves the workflow's file as it is."""
    if not create or extracted is False:
        return
    workflow = proposal.workflow
    if proposal.action not in workflow.actions:
        workflow.actions = [*workflow.actions, proposal.action]
        Workflow.objects.filter(pk=workflow.pk).update(actions=workflow.actions)
    spec = RECORD_TYPES[proposal.record_type]
    for name in {*(proposal.changes or {}), *(proposal.base or {})} - {"version"}:
        if spec.has_field(name):
            FieldPolicy.objects.get_or_create(
                workflow=workflow,
                record_type=proposal.record_type,
                field=name,
                defaults={"access": "write" if spec.field(name).risk == Risk.LOW else "suggest"},
            )
    policy = write_policy(workflow=workflow)
    decided = proposal.status in ("approved", "applied", "conflict", "failed", "reverted")
    if decided and proposal.decided_by_id is None and policy.refusal(proposal=proposal, reviewed=False):
        # Past review, and not something intake lets through unreviewed: a person approved it.
        proposal.decided_by = UserFactory()
        Proposal.objects.filter(pk=proposal.pk).update(decided_by=proposal.decided_by)


class ProposalFactory(ModelFactory[Proposal]):
    """A proposal as intake would store it; pass `status` to start it elsewhere in its lifecycle."""

    class Meta:
        model = Proposal
        skip_postgeneration_save = True

    workflow = factory.SubFactory(WorkflowFactory)
    record_type = "customer"
    record_id = factory.LazyFunction(lambda: CustomerFactory().record_id)
    action = "update"
    changes = factory.LazyFunction(lambda: {"shipping_address": "12 Harbour Road, Leith"})
    base = factory.LazyFunction(lambda: {"shipping_address": "4 Old Mill Lane, Leith"})
    reason = "Customer asked for the new address in ticket T-881"
    confidence = 0.93
    model_name = "gpt-x"
    model_version = "2026-10-01"
    prompt_version = "address-update@7"
    run_id = factory.Sequence(lambda n: f"run-{n}")
    requested_by = "agent"

    policy = factory.PostGeneration(open_workflow_to_proposal)


class RetentionRuleFactory(ModelFactory[RetentionRule]):
    class Meta:
        model = RetentionRule
        django_get_or_create = ("workflow", "kind", "bucket")

    workflow = factory.SubFactory(WorkflowFactory)
    kind = "prompt"
    bucket = "live"
    window = timedelta(days=7)
    owner = factory.LazyAttribute(lambda o: o.workflow.owner)


class ArtifactFactory(ModelFactory[Artifact]):
    """An artifact kept under `rule`, expiring by it, as the store would keep it."""

    class Meta:
        model = Artifact
        exclude = ("rule",)

    rule = factory.SubFactory(RetentionRuleFactory)
    workflow_id = factory.LazyAttribute(lambda o: o.rule.workflow_id)
    workflow_slug = factory.LazyAttribute(lambda o: o.rule.workflow.slug)
    rule_id = factory.LazyAttribute(lambda o: o.rule.pk)
    kind = factory.LazyAttribute(lambda o: o.rule.kind)
    bucket = factory.LazyAttribute(lambda o: o.rule.bucket)
    content = factory.Sequence(lambda n: f"Summarise ticket T-{9000 + n} for the support lead.")
    sha256 = factory.LazyAttribute(lambda o: hashlib.sha256(o.content.encode()).hexdigest())
    size = factory.LazyAttribute(lambda o: len(o.content.encode()))
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyAttribute(lambda o: o.created_at + o.rule.window)
