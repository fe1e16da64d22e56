"""A proposal's follow-ups as its reviewer sees them, read without rendering a page."""

from django.db import connection

from approvals.models import FieldPolicy
from approvals.review.followups import followup_previews
from tests.helpers.factories import CustomerFactory, ProposalFactory

# What each database could hold from before the edge refused it: PostgreSQL never stored a lone surrogate.
HELD = "\udfff" if connection.vendor == "sqlite" else "\u202e"
ESCAPED = f"\\u{ord(HELD):04x}"

EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}


def test_an_email_reads_as_the_proposal_would_leave_the_record_and_shows_what_no_page_can_show_escaped(db):
    customer = CustomerFactory(full_name="Maria Lopez", email="maria@example.com")
    proposal = ProposalFactory(
        record_id=customer.record_id, changes={"shipping_address": f"12 Harbour Road {HELD}"}, follow_ups=[EMAIL]
    )
    FieldPolicy.objects.create(workflow=proposal.workflow, record_type="customer", field="full_name", access="read")
    [email] = followup_previews(proposal=proposal)
    assert email.recipient == "m•••@example.com"  # the workflow may not read the address itself
    assert email.first_lines.splitlines() == [
        "Hello Maria Lopez,",
        "We have updated the shipping address on your account to:",
        f"12 Harbour Road {ESCAPED}",
        "If you did not ask for this, please reply to this email.",
    ]
    email.first_lines.encode()  # a page can show every character of it


def test_a_follow_up_kind_countersign_does_not_run_says_so(db):
    proposal = ProposalFactory(follow_ups=[{"kind": "sms", "params": {}}])
    [preview] = followup_previews(proposal=proposal)
    assert preview.problem == "'sms' is not a follow-up kind Countersign runs"
