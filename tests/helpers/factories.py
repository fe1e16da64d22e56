import hashlib
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from approvals.models import FieldPolicy, Lane, Stage, Workflow
from approvals.workflows.selectors import write_policy
from records.catalogue import RECORD_TYPES, Risk
from records.models import Customer, Order, Ticket


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Dana"
    last_name = factory.Sequence(lambda n: f"Lee{n}")
    password = factory.django.Password("pw")


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"group-{n}")


class WorkflowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workflow

    slug = factory.Sequence(lambda n: f"workflow-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    owner = factory.SubFactory(UserFactory)
    lane = Lane.WRITE
    stage = Stage.LIVE
    approver_group = factory.SubFactory(GroupFactory)
    actions = factory.LazyFunction(lambda: ["update"])


class FieldPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldPolicy

    workflow = factory.SubFactory(WorkflowFactory)
    record_type = "customer"
    field = "shipping_address"
    access = "suggest"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    record_id = factory.Sequence(lambda n: f"CUS-{20000 + n}")
    full_name = factory.Sequence(lambda n: f"Customer {n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = "+44 7700 900123"
    shipping_address = "4 Old Mill Lane, Leith"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    record_id = factory.Sequence(lambda n: f"ORD-{60000 + n}")
    customer = factory.SubFactory(CustomerFactory)
    order_number = factory.Sequence(lambda n: f"#{990000 + n}")
    amount = "49.90"


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    record_id = factory.Sequence(lambda n: f"T-{9000 + n}")
    customer = factory.SubFactory(CustomerFactory)
    subject = "Where is my order?"


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "approvals.Batch"

    workflow = factory.SubFactory(WorkflowFactory)
    name = factory.Sequence(lambda n: f"bulk job {n}")
    run_id = factory.Sequence(lambda n: f"run-{n}")
    expected_size = 10


class ProposalFactory(factory.django.DjangoModelFactory):
    """A proposal as intake would store it; pass `status` to start it elsewhere in its lifecycle."""

    class Meta:
        model = "approvals.Proposal"
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

    @factory.post_generation
    def policy(self, create: bool, extracted: bool | None, **kwargs):  # type: ignore[no-untyped-def]
        """Open the fields and action to the workflow, as intake needs before it stores a proposal;
        `policy=False` leaves the workflow's file as it is."""
        if not create or extracted is False:
            return
        workflow = self.workflow
        if self.action not in workflow.actions:
            workflow.actions = [*workflow.actions, self.action]
            Workflow.objects.filter(pk=workflow.pk).update(actions=workflow.actions)
        spec = RECORD_TYPES[self.record_type]
        for name in {*(self.changes or {}), *(self.base or {})} - {"version"}:
            if spec.has_field(name):
                FieldPolicy.objects.get_or_create(
                    workflow=workflow,
                    record_type=self.record_type,
                    field=name,
                    defaults={"access": "write" if spec.field(name).risk == Risk.LOW else "suggest"},
                )
        policy = write_policy(workflow=workflow)
        decided = self.status in ("approved", "applied", "conflict", "failed", "reverted")
        if decided and self.decided_by_id is None and policy.refusal(proposal=self, reviewed=False):
            # Past review, and not something intake lets through unreviewed: a person approved it.
            self.decided_by = UserFactory()
            type(self).objects.filter(pk=self.pk).update(decided_by=self.decided_by)


class RetentionRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "approvals.RetentionRule"
        django_get_or_create = ("workflow", "kind", "bucket")

    workflow = factory.SubFactory(WorkflowFactory)
    kind = "prompt"
    bucket = "live"
    window = timedelta(days=7)
    owner = factory.LazyAttribute(lambda o: o.workflow.owner)


class ArtifactFactory(factory.django.DjangoModelFactory):
    """An artifact kept under `rule`, expiring by it, as the store would keep it."""

    class Meta:
        model = "audit.Artifact"
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
