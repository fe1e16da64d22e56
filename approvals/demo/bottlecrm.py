"""The demo's customers and tickets copied into a local BottleCRM, so the demo can be pointed at it
(`make crm`): each demo customer becomes a contact and each demo ticket a case with that customer
as its contact, mapped to the same `CUS-…` and `T-…` ids. Run again, it copies only what is missing.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from approvals.demo.records import DEMO_IDS
from records.store import RecordNotFound, RecordRef, get_store
from records.store.bottlecrm import BottleCrmStore

STORES_FILE = Path(__file__).resolve().parent / "bottlecrm-stores.yaml"


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


def demo_stores(*, url: str, token: str) -> dict[str, BottleCrmStore]:
    """The demo's BottleCRM stores, as the demo's stores file binds them, over `url` with `token`."""
    document = yaml.safe_load(STORES_FILE.read_text())
    return {
        record_type: BottleCrmStore(
            url=url,
            token=token,
            record_type=record_type,
            fields=binding["fields"],
            side_effects=binding.get("side_effects", {}),
        )
        for record_type, binding in document["stores"].items()
    }


def _mapped(store: BottleCrmStore, ref: RecordRef) -> str | None:
    try:
        return store.remote_id(ref)
    except RecordNotFound:
        return None


def bottlecrm_demo_copy(*, url: str, token: str) -> Copied:
    """Copy the demo's customers and tickets, as the stores bound to them now hold them, into BottleCRM."""
    stores = demo_stores(url=url, token=token)
    copied = Copied()
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
