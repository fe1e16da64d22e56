"""The alarms of the layers below approvals, told as notices: a record store that stopped answering
(`records.signals.store_unreachable`) and the audit chain found broken (`audit.alarms.chain_broken`).
Connected when the app is ready; each notice is written in the transaction of the event it tells of."""

from datetime import datetime
from typing import Any

from approvals.notices import notice_record


def notice_store_unreachable(
    sender: Any, *, record_type: str, store: str, reason: str, since: datetime, **kwargs: Any
) -> None:
    notice_record(
        event="store_unreachable",
        subject=f"Store unreachable: {store} ({record_type})",
        body=f"The {store} store of {record_type} records stopped answering at {since:%Y-%m-%d %H:%M:%S} UTC: "
        f"{reason}\nApproved changes to {record_type} records wait until it answers again.",
        dedupe_key=f"store-unreachable:{record_type}:{since.isoformat()}",
    )


def notice_chain_broken(sender: Any, *, event: Any, **kwargs: Any) -> None:
    notice_record(
        event="audit_broken",
        subject="The audit chain is broken",
        body=f"{event.reason}\nThe break stays on the trail (event #{event.pk}); run `manage.py verify_audit` "
        "to see it, and find out who changed the trail.",
        dedupe_key=f"audit-broken:{event.pk}",
    )


def connect() -> None:
    from audit.alarms import chain_broken
    from records.signals import store_unreachable

    store_unreachable.connect(notice_store_unreachable, dispatch_uid="approvals-notice-store-unreachable")
    chain_broken.connect(notice_chain_broken, dispatch_uid="approvals-notice-chain-broken")
