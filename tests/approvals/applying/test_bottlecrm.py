"""The demo's stores file points customers at a running BottleCRM: a proposal sent through the API,
approved by a person and applied by a real worker lands in BottleCRM; undo puts it back there; an edit
made in BottleCRM itself shows on the record's timeline."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from approvals.demo.bottlecrm import STORES_FILE
from approvals.models import Proposal, ProposalStatus
from approvals.review.services import proposal_approve
from approvals.undo.services import undo_change
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change, StoreBinding
from records.store import get_store, store_side_effects
from records.store.registry import bindings_reload
from tests.helpers.bottlecrm import BottleCrm
from tests.helpers.factories import FieldPolicyFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, proposal_body
from tests.helpers.seeing import make_auditor
from tests.helpers.worker import wait_until

pytestmark = pytest.mark.worker

OLD, NEW = "4 Old Mill Lane, Leith", "12 Harbour Road, Leith"


def test_an_approved_change_lands_in_bottlecrm_is_undone_there_and_an_edit_there_reaches_the_timeline(
    start_worker, bottlecrm: BottleCrm, workflow, lead, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("load_stores", str(STORES_FILE))
    assert set(StoreBinding.objects.values_list("record_type", flat=True)) == {"customer", "ticket"}
    store = bottlecrm.store("customer")
    ref = bottlecrm.customer(store, full_name="Maria Lopez", shipping_address=OLD)
    assert get_store("customer").fetch(ref, ["shipping_address"]).values == {"shipping_address": OLD}
    for field, access in (("full_name", "read"), ("shipping_address", "suggest")):
        FieldPolicyFactory(workflow=workflow, record_type="customer", field=field, access=access)
    pipeline = make_pipeline(workflow)
    start_worker(concurrency=1)

    answer = pipeline.post(
        "/api/v1/proposals",
        proposal_body(record_id=ref.record_id, changes={"shipping_address": NEW}, base={"shipping_address": OLD}),
    )
    assert answer.status_code == 201, answer.content
    proposal = Proposal.objects.get(pk=answer.json()["id"])
    assert proposal.status == ProposalStatus.PENDING
    proposal_approve(proposal=proposal, reviewer=lead)
    wait_until(
        lambda: Proposal.objects.filter(pk=proposal.pk, status=ProposalStatus.APPLIED).exists(),
        timeout=60,
        what="the worker applies the approved change",
    )
    assert bottlecrm.raw(store, ref)["address_line"] == NEW
    change = Change.objects.get(proposal_id=proposal.pk)
    assert (change.before, change.after) == ({"shipping_address": OLD}, {"shipping_address": NEW})

    ops = UserFactory(username="ops")
    ops.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    undo_change(change=change, actor=Actor.user(ops), user=ops, reason="the customer moved back")
    assert bottlecrm.raw(store, ref)["address_line"] == OLD

    bottlecrm.patch(store, ref, {"address_line": "3 Typed Street, Leith"})
    # The next read finds the edit (here the pipeline's; any read of the record does).
    assert pipeline.get(f"/api/v1/records/customer/{ref.record_id}").status_code == 200
    # An edit made outside belongs to no workflow: the whole trail's readers see it on the timeline.
    client = Client()
    client.force_login(make_auditor(UserFactory(username="audrey")))
    page = client.get(f"/records/customer/{ref.record_id}/").content.decode()
    assert AuditEvent.objects.filter(action="record.changed_outside", record_id=ref.record_id).exists()
    assert "3 Typed Street, Leith" in page
    assert "Changed outside Countersign between" in page


def test_the_demo_stores_file_refuses_unreviewed_writes_of_a_case_status_even_without_its_token(
    db, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BOTTLECRM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BOTTLECRM_TOKEN", "bcrm_pat_x")
    call_command("load_stores", str(STORES_FILE))
    monkeypatch.delenv("BOTTLECRM_TOKEN")
    bindings_reload()
    [effect] = store_side_effects(record_type="ticket").values()
    assert effect.sentence == "Writing status in BottleCRM emails the case's contact"
