"""Since when a record type's store has been unreachable.

The first failure to reach a store records an outage (and says so on the trail and to the layers
above, through `records.signals.store_unreachable`); every later one
updates its last error; the next write that succeeds removes it (and says so). While an outage is
recorded, the approved changes of that record type wait, and the pages say so.
"""

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.services import Actor, audit_record
from core.roundtrip import Rows, Statement, built_once
from records.models import StoreOutage
from records.signals import store_unreachable


def store_outage_note(*, record_type: str, store: str, reason: str, worker: str) -> StoreOutage:
    """Record that `store`, holding `record_type`, did not answer: a new outage, or the latest error
    of the one already recorded. In its own transaction, since the caller's has rolled back."""
    now = timezone.now()
    reason = reason[:2000]
    with transaction.atomic():
        outage = StoreOutage.objects.select_for_update().filter(record_type=record_type).first()
        if outage is not None:
            outage.reason, outage.last_error_at, outage.store = reason, now, store
            outage.save(update_fields=["reason", "last_error_at", "store"])
            return outage
        try:
            with transaction.atomic():
                outage = StoreOutage.objects.create(
                    record_type=record_type, store=store, since=now, reason=reason, last_error_at=now
                )
        except IntegrityError:  # another worker recorded it first
            StoreOutage.objects.filter(record_type=record_type).update(reason=reason, last_error_at=now)
            return StoreOutage.objects.get(record_type=record_type)
        audit_record(
            action="store.unreachable",
            actor=Actor.worker(worker),
            record_type=record_type,
            reason=reason,
            details={"store": store, "since": now.isoformat()},
        )
        store_unreachable.send(sender=StoreOutage, record_type=record_type, store=store, reason=reason, since=now)
    return outage


def _clear_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(StoreOutage._meta.db_table)
    return f"DELETE FROM {table} WHERE {quote('record_type')} = %s RETURNING {quote('store')}, {quote('since')}"  # noqa: S608


def store_outage_clear_statement(*, record_type: str) -> Statement:
    """The statement that ends `record_type`'s outage, if one is recorded, for the caller to send with
    the statements of a write that succeeded; hand its rows to `store_outage_cleared`."""
    return Statement(built_once("outage: clear", _clear_sql), [record_type], prepared=True)


def store_outage_cleared(*, record_type: str, rows: Rows, worker: str) -> None:
    """After `store_outage_clear_statement` ran: when it ended an outage, say so on the trail."""
    if not rows:
        return
    store, since = rows[0]
    audit_record(
        action="store.reachable",
        actor=Actor.worker(worker),
        record_type=record_type,
        reason=f"{store} answered again",
        details={"store": store, "since": since if isinstance(since, str) else since.isoformat()},
    )
