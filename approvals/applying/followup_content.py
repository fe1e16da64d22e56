"""What a follow-up says: the email a template makes of a record, and the body a webhook posts.

The worker renders them to send. The review screen renders the same ones before anything is
approved, from the record as the proposal would leave it and masked as its workflow may see the
record, so a person approves what will go out. Rendering never sends anything.
"""

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.template import engines

from approvals.models import Action, Proposal
from approvals.workflows.followups import EMAIL_TEMPLATES
from records.catalogue import RECORD_TYPES, Kind
from records.store import RecordNotFound, RecordRef, RecordState, get_store

MASK = "•••"


class CannotRender(Exception):
    """The email cannot be made: its template is unknown, or its record or customer address is gone."""


@dataclass(frozen=True)
class Email:
    customer: RecordRef
    recipient: str
    subject: str
    body: str

    def first_lines(self, count: int = 4) -> str:
        """The first `count` lines of text of the body (blank lines left out)."""
        return "\n".join([line for line in self.body.splitlines() if line.strip()][:count])


def masked(value: Any, kind: str) -> Any:
    """A value its viewer may not read: an email keeps its first letter and domain (m•••@example.com)."""
    if value in (None, ""):
        return value
    text = str(value)
    if kind == Kind.EMAIL and "@" in text:
        local, _, domain = text.rpartition("@")
        return f"{local[:1]}{MASK}@{domain}"
    return MASK


def _fetch(ref: RecordRef) -> RecordState:
    try:
        return get_store(ref.record_type).fetch(ref)
    except RecordNotFound:
        raise CannotRender(f"no {ref.record_type} {ref.record_id}") from None


def _customer_of(record: RecordState) -> RecordState:
    if record.ref.record_type == "customer":
        return record
    record_type = RECORD_TYPES[record.ref.record_type]
    reference = next(s.name for s in record_type.fields if s.kind == Kind.REF and s.ref_type == "customer")
    customer_id = record.values.get(reference)
    if not customer_id:
        raise CannotRender(f"{record.ref.record_type} {record.ref.record_id} names no customer")
    return _fetch(RecordRef("customer", str(customer_id)))


def _as_seen(record_type: str, values: dict[str, Any], policies: dict[tuple[str, str], str]) -> dict[str, Any]:
    spec = RECORD_TYPES[record_type]
    hidden = {name for name in values if spec.has_field(name) and (record_type, name) not in policies}
    return {name: masked(value, spec.field(name).kind) if name in hidden else value for name, value in values.items()}


def _render(text: str, context: dict[str, Any]) -> str:
    """Plain-text mail: no HTML escaping."""
    return engines["django"].from_string("{% autoescape off %}" + text + "{% endautoescape %}").render(context)


def email_content(*, proposal: Proposal, template: str, policies: dict[tuple[str, str], str] | None = None) -> Email:
    """The email `template` makes for the proposal's record. To send (`policies` None): from the
    record as it is, the change applied. To preview: from the record as the proposal would leave it,
    each value outside the workflow's `policies` masked. Raises CannotRender."""
    if template not in EMAIL_TEMPLATES:
        raise CannotRender(f"unknown email template '{template[:64]}'; known: {', '.join(EMAIL_TEMPLATES)}")
    record = _fetch(RecordRef(proposal.record_type, proposal.record_id))
    customer = _customer_of(record)
    record_values, customer_values = dict(record.values), dict(customer.values)
    if policies is not None:
        if proposal.action == Action.UPDATE:
            record_values |= proposal.changes or {}
        if customer.ref == record.ref:
            customer_values = record_values
        record_values = _as_seen(record.ref.record_type, record_values, policies)
        customer_values = _as_seen("customer", customer_values, policies)
    address = customer_values.get("email")
    if not address:
        raise CannotRender(f"customer {customer.ref.record_id} has no email address")
    subject, body = EMAIL_TEMPLATES[template]
    context = {"customer": customer_values, "record": record_values, "changes": proposal.changes}
    return Email(
        customer=customer.ref,
        recipient=str(address),
        subject=" ".join(_render(subject, context).split()),
        body=_render(body, context),
    )


def webhook_content(
    *, proposal: Proposal, params: dict[str, Any], follow_up_id: int | None, change_id: UUID | None
) -> dict[str, Any]:
    """The JSON a webhook follow-up posts. Before the change is applied it has no ids yet (null)."""
    return {
        "event": "follow_up",
        "follow_up_id": follow_up_id,
        "proposal_id": proposal.pk,
        "change_id": str(change_id) if change_id is not None else None,
        "workflow": proposal.workflow.slug,
        "record_type": proposal.record_type,
        "record_id": proposal.record_id,
        "payload": params.get("payload", {}),
    }
