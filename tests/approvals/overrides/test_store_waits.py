"""The Blocked page while a record type's store does not answer: since when, why, and what waits on it."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine
from django.urls import reverse

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import ProposalStatus
from records.models import StoreOutage
from records.store import RecordRef
from tests.helpers.factories import ProposalFactory, WorkflowFactory
from tests.helpers.memory_store import MemoryRecordStore, bound
from tests.helpers.pages import text_of

MARIA = RecordRef("customer", "CUS-10432")
WENT_DOWN = datetime(2026, 12, 2, 14, 2, 30, tzinfo=UTC)


@pytest.fixture
def crm() -> Iterator[MemoryRecordStore]:
    store = MemoryRecordStore(name="CRM")
    with bound("customer", store):
        store.create_many(
            "customer", [(MARIA.record_id, {"full_name": "Maria Lopez", "shipping_address": "4 Old Mill"})]
        )
        yield store


def approved(on_call, **kwargs):  # type: ignore[no-untyped-def]
    return ProposalFactory(
        workflow=on_call.workflow,
        status=ProposalStatus.APPROVED,
        record_id=MARIA.record_id,
        changes={"shipping_address": "12 Harbour Road"},
        base={"shipping_address": "4 Old Mill"},
        **kwargs,
    )


def test_the_blocked_page_lists_what_waits_on_an_unreachable_store(client, on_call, crm):
    first, second = approved(on_call), approved(on_call)
    crm.unreachable = "connection refused"
    with time_machine.travel(WENT_DOWN, tick=False):
        assert proposal_apply(proposal_id=first.pk, worker="w").outcome == Outcome.RETRY
    client.force_login(on_call.lead)
    page = client.get(reverse("blocked"))
    assert page.status_code == 200
    section = text_of(page, "store-customer")
    assert "CRM (customer)" in section
    assert "Unreachable since Wed 2 Dec 14:02" in section
    assert "connection refused" in section
    assert "2 approved changes wait on it." in section
    assert f"Proposal {first.pk} update" in section and f"Proposal {second.pk} update" in section
    assert "shipping_address: 12 Harbour Road" in section
    assert crm.writes == 0


def test_a_proposal_of_a_workflow_out_of_sight_is_neither_listed_nor_counted(client, on_call, crm):
    hidden = ProposalFactory(
        workflow=WorkflowFactory(slug="elsewhere"),
        status=ProposalStatus.APPROVED,
        record_id=MARIA.record_id,
        changes={"shipping_address": "12 Harbour Road"},
        base={"shipping_address": "4 Old Mill"},
    )
    StoreOutage.objects.create(record_type="customer", store="CRM", reason="timed out after 10s")
    client.force_login(on_call.lead)
    section = text_of(client.get(reverse("blocked")), "store-customer")
    assert "0 approved changes wait on it." in section
    assert f"Proposal {hidden.pk}" not in section


def test_once_the_store_answers_the_page_says_every_store_answers(client, on_call, crm):
    proposal = approved(on_call)
    crm.unreachable = "connection refused"
    assert proposal_apply(proposal_id=proposal.pk, worker="w").outcome == Outcome.RETRY
    crm.unreachable = ""
    assert proposal_apply(proposal_id=proposal.pk, worker="w").outcome == Outcome.APPLIED
    client.force_login(on_call.lead)
    page = client.get(reverse("blocked"))
    assert "Every store answers." in text_of(page)
    assert 'id="store-customer"' not in page.content.decode()
