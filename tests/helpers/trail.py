"""Writes a record and the Change that describes it, exactly as applying or undoing does, for trail tests.

Each helper writes through the record store, stores a Change with the exact values before and after,
and appends the matching `change.applied` or `change.reverted` event, all at the moment given.
"""

import re
from datetime import datetime
from typing import Any

from django.db import transaction

from audit.services import Actor, audit_record
from records.models import Change, ChangeAction
from records.store import RecordRef, get_store

WORKER = "worker@test"


def _event(change: Change, action: str, **context: Any) -> None:
    audit_record(
        action=action,
        actor=Actor.worker(WORKER),
        record_type=change.record_type,
        record_id=change.record_id,
        old_value=change.before,
        new_value=change.after,
        change_id=change.id,
        proposal_id=change.proposal_id,
        batch_id=change.batch_id,
        workflow_slug=change.workflow_slug,
        prompt_version=change.prompt_version,
        occurred_at=change.applied_at,
        **context,
    )


def apply_update(
    ref: RecordRef, values: dict[str, Any], *, at: datetime, proposal: Any = None, **context: Any
) -> Change:
    store = get_store(ref.record_type)
    with transaction.atomic():
        current = store.fetch(ref, list(values), lock=True)
        written = store.write(ref, values, current.version)
        change = Change.objects.create(
            record_type=ref.record_type,
            record_id=ref.record_id,
            action=ChangeAction.UPDATE,
            before=current.values,
            after=written.values,
            version_before=current.version,
            version_after=written.version,
            proposal_id=proposal.pk if proposal else None,
            batch_id=proposal.batch_id if proposal else None,
            workflow_slug=proposal.workflow.slug if proposal else context.pop("workflow_slug", ""),
            prompt_version=proposal.prompt_version if proposal else context.pop("prompt_version", ""),
            applied_at=at,
            applied_by=WORKER,
        )
        if proposal is not None:
            context.setdefault("model_name", proposal.model_name)
            context.setdefault("model_version", proposal.model_version)
            context.setdefault("reason", proposal.reason)
            proposal.status, proposal.change_id = "applied", change.id
            proposal.save(update_fields=["status", "change_id"])
        _event(change, "change.applied", **context)
    return change


def apply_hide(ref: RecordRef, action: str, *, at: datetime) -> Change:
    """Archive or delete (soft) the record."""
    store = get_store(ref.record_type)
    with transaction.atomic():
        current = store.fetch(ref, [], lock=True)
        hidden = store.set_hidden(
            ref,
            archived=current.archived or action == ChangeAction.ARCHIVE,
            deleted=current.deleted or action == ChangeAction.DELETE,
            expected_version=current.version,
        )
        key = "archived" if action == ChangeAction.ARCHIVE else "deleted"
        change = Change.objects.create(
            record_type=ref.record_type,
            record_id=ref.record_id,
            action=action,
            before={key: False},
            after={key: True},
            version_before=current.version,
            version_after=hidden.version,
            applied_at=at,
            applied_by=WORKER,
        )
        _event(change, "change.applied")
    return change


def revert(original: Change, *, at: datetime) -> Change:
    """Undo `original`: put back what it replaced, as a new Change."""
    ref = RecordRef(original.record_type, original.record_id)
    store = get_store(ref.record_type)
    with transaction.atomic():
        if original.action == ChangeAction.UPDATE:
            current = store.fetch(ref, list(original.before), lock=True)
            written = store.write(ref, original.before, current.version)
            before, after = current.values, written.values
        else:
            current = store.fetch(ref, [], lock=True)
            written = store.set_hidden(
                ref,
                archived=current.archived and original.action != ChangeAction.ARCHIVE,
                deleted=current.deleted and original.action != ChangeAction.DELETE,
                expected_version=current.version,
            )
            before, after = {}, {}
        change = Change.objects.create(
            record_type=ref.record_type,
            record_id=ref.record_id,
            action=ChangeAction.REVERT,
            before=before,
            after=after,
            version_before=current.version,
            version_after=written.version,
            proposal_id=original.proposal_id,
            reverts=original,
            applied_at=at,
            applied_by=WORKER,
        )
        _event(change, "change.reverted")
    return change


def trail_rows(html: str, action: str) -> list[str]:
    """The words of each event row of `action` on a page (trail, timeline or trace), as a person reads
    them: cells and lines apart, words inside a line together."""
    rows = re.findall(r'<tr id="event-\d+">.*?</tr>', html, re.S)
    return [_words(row) for row in rows if f"<strong>{action}</strong>" in row]


def _words(html: str) -> str:
    html = re.sub(r"<(?:/td|/div|br)[^>]*>", " | ", html)
    text = re.sub(r"<[^>]+>", "", html).replace("&#x27;", "'")
    return re.sub(r"\s+", " ", text).strip()
