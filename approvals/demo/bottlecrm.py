"""The demo's customers and tickets copied into a local BottleCRM, so the demo's tickets can be kept
there (`make crm`): each demo customer becomes a contact and each demo ticket a case with that
customer as its contact (whom BottleCRM emails when the case's status changes), mapped to the same
`CUS-…` and `T-…` ids. Run again, it copies only what is missing;
on a fresh Countersign database it links the contacts and cases an earlier run made (a contact's
reference holds its `CUS-…` id, a case's name ends with its `T-…` id) instead of copying them twice.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from approvals.demo.records import DEMO_IDS
from approvals.intake.accounts import service_account_create
from approvals.intake.services import ProposalData, proposal_submit
from approvals.models import Proposal, Workflow
from audit.services import Actor
from records.store import RecordNotFound, RecordRef, get_store
from records.store.bottlecrm import BottleCrmStore

STORES_FILE = Path(__file__).resolve().parent / "bottlecrm-stores.yaml"
WORKFLOWS_FILE = Path(__file__).resolve().parent / "bottlecrm-workflows.yaml"
CASE_WORKFLOW = "case-updates"


@dataclass
class Copied:
    customers: int = 0
    tickets: int = 0
    already: int = 0

    @property
    def summary(self) -> str:
        return (
            f"Copied {self.customers} customers as contacts and {self.tickets} tickets as cases into BottleCRM"
            f" ({self.already} were there already)."
        )


# How the demo's customers are copied in as contacts (each case's contact is its ticket's customer).
CONTACT_FIELDS = {
    "full_name": "name",
    "email": "email",
    "phone": "phone",
    "shipping_address": "address_line",
    "support_notes": "description",
}


def demo_stores(*, url: str, token: str) -> dict[str, BottleCrmStore]:
    """The demo's BottleCRM stores over `url` with `token`: tickets as the demo's stores file binds
    them, and customers as the contacts copied in."""
    document = yaml.safe_load(STORES_FILE.read_text())
    bindings = {"customer": {"fields": CONTACT_FIELDS}} | document["stores"]
    return {
        record_type: BottleCrmStore(
            url=url,
            token=token,
            record_type=record_type,
            fields=binding["fields"],
            side_effects=binding.get("side_effects", {}),
        )
        for record_type, binding in bindings.items()
    }


def _mapped(store: BottleCrmStore, ref: RecordRef) -> str | None:
    try:
        return store.remote_id(ref)
    except RecordNotFound:
        return None


def _link_earlier_copies(stores: dict[str, BottleCrmStore]) -> None:
    customers, tickets = set(DEMO_IDS["customer"]), set(DEMO_IDS["ticket"])
    for contact in stores["customer"].listed():
        ref = RecordRef("customer", str(contact.get("source_ref") or ""))
        if ref.record_id in customers and _mapped(stores["customer"], ref) is None:
            stores["customer"].link(ref, contact["id"], record=contact)
    for case in stores["ticket"].listed():
        name = str(case.get("name") or "")
        ref = RecordRef("ticket", name.rpartition("(")[2].rstrip(")"))
        if ref.record_id in tickets and _mapped(stores["ticket"], ref) is None:
            stores["ticket"].link(ref, case["id"], record=case)


def bottlecrm_demo_copy(*, url: str, token: str) -> Copied:
    """Copy the demo's customers and tickets, as the stores bound to them now hold them, into BottleCRM."""
    stores = demo_stores(url=url, token=token)
    copied = Copied()
    _link_earlier_copies(stores)
    contacts: dict[str, str] = {}
    source = get_store("customer")
    customers = source.fetch_many("customer", DEMO_IDS["customer"])
    for record_id in sorted(customers):
        ref = RecordRef("customer", record_id)
        remote_id = _mapped(stores["customer"], ref)
        if remote_id is None:
            remote_id = stores["customer"].create(ref, customers[record_id].values)
            copied.customers += 1
        else:
            copied.already += 1
        contacts[record_id] = remote_id
    tickets = get_store("ticket").fetch_many("ticket", DEMO_IDS["ticket"])
    for record_id in sorted(tickets):
        ref = RecordRef("ticket", record_id)
        if _mapped(stores["ticket"], ref) is not None:
            copied.already += 1
            continue
        values: dict[str, Any] = dict(tickets[record_id].values)
        # BottleCRM wants each case's name unique and at most 64 characters; demo subjects repeat.
        values["subject"] = f"{values['subject'][:50]} ({record_id})"
        customer = values.get("customer")
        extra = {"contacts": [contacts[customer]]} if customer in contacts else {}
        stores["ticket"].create(ref, values, extra=extra)
        copied.tickets += 1
    return copied


def bottlecrm_demo_proposals() -> int:
    """Two pending proposals from the `case-updates` workflow on cases kept in BottleCRM, read through
    the ticket store as a pipeline reads them: closing one case with a note (BottleCRM emails its
    contact), raising another's priority. None when the workflow already has proposals."""
    workflow = Workflow.objects.get(slug=CASE_WORKFLOW)
    if Proposal.objects.filter(workflow=workflow).exists():
        return 0
    account = service_account_create(workflow=workflow, name="case-pipeline", actor=Actor.system("demo")).account
    store = get_store("ticket")
    tickets = store.fetch_many("ticket", DEMO_IDS["ticket"][:40], ["status", "priority", "resolution_note"])
    opened = [state for state in tickets.values() if state.values["status"] == "open"]
    closing, raising = opened[0], next(s for s in opened[1:] if s.values["priority"] in ("low", "normal"))
    for state, changes, reason in (
        (
            closing,
            {"status": "closed", "resolution_note": "Refund issued; the customer confirmed it arrived."},
            "The customer replied 'all sorted, thank you' to the refund email",
        ),
        (raising, {"priority": "high"}, "Second reminder from the customer in two days"),
    ):
        base = {name: state.values[name] for name in changes}
        proposal_submit(
            account=account,
            data=ProposalData(
                record_type="ticket",
                record_id=state.ref.record_id,
                action="update",
                changes=changes,
                base=base,
                base_version=state.version,
                requested_by="agent",
                reason=reason,
                confidence=0.9,
                run_id="case-run-1",
                model_name="gpt-x",
                model_version="2026-10-01",
                prompt_version="case-triage@2",
            ),
        )
    return 2
