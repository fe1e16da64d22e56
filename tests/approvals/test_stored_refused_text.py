"""Text the API now refuses, stored before it did, never breaks a page or an export: it is shown escaped.

Before the edge refused them, a pipeline could leave lone surrogates and NUL characters in a
proposal's JSON on SQLite (PostgreSQL refused them with a 500), and bidirectional controls on both.
These tests store such values directly, as that version did, then open every page that shows them.
"""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import RetentionRule
from audit.services import Actor, audit_record
from records.store import RecordRef
from tests.helpers.factories import (
    ArtifactFactory,
    BatchFactory,
    CustomerFactory,
    FieldPolicyFactory,
    GroupFactory,
    ProposalFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.seeing import make_exporter
from tests.helpers.trail import apply_update

# What each database could be left holding: PostgreSQL never stored a lone surrogate or a NUL.
HELD = "\udfff\x00\u202e" if connection.vendor == "sqlite" else "\u202e"
# Text columns refuse a lone surrogate on SQLite too: only JSON kept one, as an escape.
HELD_IN_TEXT = HELD.replace("\udfff", "")
ADDRESS = f"12 Harbour{HELD} Road"
TAG = f"vip{HELD}"
BASE = f"4 Old Mill{HELD} Lane"


def escaped(text: str) -> list[str]:
    return [f"\\u{ord(character):04x}" for character in text]


def assert_shown_escaped(response, held: str = HELD) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    body = b"".join(response.streaming_content if response.streaming else [response.content]).decode()
    assert not any(character in body for character in held), "a refused character reached the page as it is"
    for escape in escaped(held):
        assert escape in body
    return body


@pytest.fixture
def stored(db):  # type: ignore[no-untyped-def]
    """A workflow whose lead sees, decides and undoes everything below, all of it holding refused text."""
    leads = GroupFactory(name="support-leads")
    lead = UserFactory(username="lead")
    lead.groups.add(leads)
    workflow = WorkflowFactory(slug="address-updates", approver_group=leads, owner=lead)
    for codename in ("view_workflow", "review_workflow", "rollback_workflow"):
        assign_perm(f"approvals.{codename}", leads, workflow)
    FieldPolicyFactory(workflow=workflow, record_type="customer", field="tags", access="write")
    make_exporter(lead)
    CustomerFactory(record_id="CUS-10432", shipping_address="4 Old Mill Lane")
    batch = BatchFactory(workflow=workflow, name=f"Address fixes{HELD_IN_TEXT}")
    pending = ProposalFactory(
        workflow=workflow,
        batch=batch,
        record_id="CUS-10432",
        changes={"shipping_address": ADDRESS},
        base={"shipping_address": BASE},
    )
    conflict = ProposalFactory(
        workflow=workflow, status="conflict", changes={"shipping_address": ADDRESS}, base={"shipping_address": BASE}
    )
    applied = ProposalFactory(workflow=workflow, batch=batch, status="approved", record_id="CUS-10432", changes={})
    change = apply_update(
        RecordRef("customer", "CUS-10432"), {"tags": [TAG]}, at=timezone.now() - timedelta(minutes=5), proposal=applied
    )
    audit_record(
        action="proposal.submitted",
        actor=Actor.system(),
        record_type="customer",
        record_id="CUS-10432",
        proposal_id=pending.pk,
        workflow_slug=workflow.slug,
        new_value=pending.changes,
        details={"base": pending.base},
    )
    rule = RetentionRule.objects.create(
        workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7), owner=lead
    )
    ArtifactFactory(rule=rule, proposal_id=pending.pk, name=f"prompt{HELD_IN_TEXT}.txt")
    return {
        "lead": lead,
        "workflow": workflow,
        "batch": batch,
        "pending": pending,
        "conflict": conflict,
        "change": change,
    }


def test_the_trail_shows_stored_refused_text_escaped(client, stored):
    client.force_login(stored["lead"])
    assert_shown_escaped(client.get("/trail/"))


def _today() -> dict[str, str]:
    return {"since": (timezone.now() - timedelta(hours=1)).isoformat(), "until": timezone.now().isoformat()}


def test_the_csv_export_is_whole_and_shows_it_escaped(client, stored):
    client.force_login(stored["lead"])
    body = assert_shown_escaped(client.get("/trail/export.csv", _today()))
    rows = list(csv.DictReader(io.StringIO(body)))
    assert {row["action"] for row in rows} >= {"change.applied", "proposal.submitted"}


def test_the_json_export_keeps_the_stored_value_exactly(client, stored):
    client.force_login(stored["lead"])
    body = assert_shown_escaped(client.get("/trail/export.json", _today()))
    events = {event["action"]: event for event in json.loads(body)}
    assert events["change.applied"]["new_value"] == {"tags": [TAG]}
    assert events["proposal.submitted"]["details"] == {"base": {"shipping_address": BASE}}


@pytest.mark.parametrize(
    ("page", "held"),
    [
        ("/blocked/", HELD),
        ("/review/", HELD_IN_TEXT),
        ("/review/{pending}/", HELD),
        ("/review/batches/{batch}/", HELD_IN_TEXT),
        ("/trace/proposal/{pending}/", HELD),
        ("/trace/change/{change}/", HELD),
        ("/changes/{change}/undo/", HELD),
        ("/undo/?scope=batch&batch={batch}", HELD_IN_TEXT),
        ("/records/customer/CUS-10432/", HELD),
        ("/records/customer/CUS-10432/?at={after}", HELD),
        ("/workflows/{workflow}/retention/", HELD_IN_TEXT),
    ],
)
def test_each_page_that_shows_stored_text_shows_it_escaped(client, stored, page, held):
    client.force_login(stored["lead"])
    after = timezone.localtime(stored["change"].applied_at + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    url = page.format(
        pending=stored["pending"].pk,
        batch=stored["batch"].pk,
        change=stored["change"].id,
        workflow=stored["workflow"].slug,
        after=after,
    )
    assert_shown_escaped(client.get(url), held=held)
