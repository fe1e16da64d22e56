"""How an event reads: which fields it says changed, from what to what, and who decided.

Read the same way by the trail's rows, the record timeline and a change's trace, so that none of
them says more than the event holds. Events are never rewritten, so each reading also covers what
events stored in an earlier shape say.

A `proposal.submitted` event holds, in `old_value`, what the record held in each field the proposal
changes when it arrived, and in its details the `base` the AI says it saw. Events stored before it
held that (their details carry no `base`) kept the AI's `base` in `old_value`, often with fields the
proposal does not change: those read as what the AI saw, never as the record's value, and only the
fields the proposal changes are listed.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from audit.models import AuditEvent


class _NotRecorded:
    """A value the event does not hold (as opposed to an empty value, which it does)."""

    def __repr__(self) -> str:
        return "NOT_RECORDED"


NOT_RECORDED: Final = _NotRecorded()

# Events that name a field without changing it: the field is what they are about.
_NAMING_ONLY = {"proposal.artifact_flagged"}


@dataclass(frozen=True)
class EventValue:
    """One field an event names, with its value before and after; NOT_RECORDED where it does not say.
    `saw` is what the AI says it saw in that field, for a submitted proposal that sent it."""

    field: str
    before: Any
    after: Any
    saw: Any = NOT_RECORDED

    @property
    def before_known(self) -> bool:
        return self.before is not NOT_RECORDED

    @property
    def saw_differs(self) -> bool:
        """Whether what the AI saw is worth saying: it sent it, and it is not simply the value before."""
        return self.saw is not NOT_RECORDED and (not self.before_known or self.saw != self.before)


def _mapping(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def holds_held_values(event: AuditEvent) -> bool:
    """Whether a submitted event's `old_value` is what the record held (rather than the AI's `base`)."""
    return isinstance(event.details, dict) and "base" in event.details


def submitted_values(event: AuditEvent) -> list[EventValue]:
    """Each field a `proposal.submitted` event proposes to change: the record's value when it arrived
    (NOT_RECORDED for an event stored before that was kept), the proposed value, and what the AI saw."""
    proposed = _mapping(event.new_value) or {}
    if holds_held_values(event):
        held: dict[str, Any] | None = _mapping(event.old_value) or {}
        saw = _mapping(event.details["base"]) or {}
    else:
        held, saw = None, _mapping(event.old_value) or {}
    return [
        EventValue(
            field=name,
            before=held.get(name, NOT_RECORDED) if held is not None else NOT_RECORDED,
            after=value,
            saw=saw.get(name, NOT_RECORDED),
        )
        for name, value in proposed.items()
    ]


def event_values(event: AuditEvent) -> list[EventValue]:
    """Each field the event says changed (or, for a proposal, would change), before and after."""
    if event.action == "proposal.submitted":
        return submitted_values(event)
    if event.action in _NAMING_ONLY:
        return []
    if event.field:
        return [EventValue(event.field, event.old_value, event.new_value)]
    old, new = _mapping(event.old_value), _mapping(event.new_value)
    if old is None and new is None:
        return []
    old, new = old or {}, new or {}
    return [EventValue(name, old.get(name), new.get(name)) for name in dict.fromkeys([*old, *new])]


def flagged_field(event: AuditEvent) -> str:
    """The field a lint event flagged, as `record_type.field` ("" for any other event)."""
    return event.field if event.action == "proposal.artifact_flagged" else ""


@dataclass(frozen=True)
class Decider:
    """Who decided what an event records, in the words the trail uses: "approved by", "rejected by"…"""

    verb: str
    label: str


def _decided_by(event: AuditEvent, key: str) -> str:
    """The person named on a decision: its approver label as stored before, else its details, else
    its actor."""
    details = event.details if isinstance(event.details, dict) else {}
    return event.approver_label or str(details.get(key) or "") or event.actor_label


def decider(event: AuditEvent) -> Decider | None:
    """Who approved, rejected, refused, forced or granted what the event records; None when nobody did."""
    details = event.details if isinstance(event.details, dict) else {}
    if event.action == "proposal.rejected":
        return Decider("rejected by", _decided_by(event, "rejected_by"))
    if event.action == "artifact.training_decided" and details.get("approved") is False:
        return Decider("refused by", _decided_by(event, "refused_by"))
    if event.action == "retention.change_rejected":
        return Decider("rejected by", _decided_by(event, "rejected_by"))
    if not event.approver_label:
        return None
    if event.action == "proposal.forced":
        return Decider("forced over a conflict by", event.approver_label)
    if event.action == "override.used":
        return Decider("under an override granted by", event.approver_label)
    if event.action == "retention.changed":
        return Decider("countersigned by", event.approver_label)
    return Decider("approved by", event.approver_label)


@dataclass(frozen=True)
class OutsideWindow:
    """When a record held outside Countersign was changed there: after Countersign last saw it
    (`seen_at`, at `version_seen`) and before it found the change (`found_at`, at `version_found`)."""

    seen_at: datetime
    found_at: datetime
    version_seen: int
    version_found: int


def outside_window(event: AuditEvent) -> OutsideWindow | None:
    """The window of a `record.changed_outside` event (None for any other event)."""
    details = event.details if isinstance(event.details, dict) else {}
    if event.action != "record.changed_outside" or "seen_at" not in details:
        return None
    return OutsideWindow(
        seen_at=datetime.fromisoformat(details["seen_at"]),
        found_at=datetime.fromisoformat(details["found_at"]),
        version_seen=int(details["version_seen"]),
        version_found=int(details["version_found"]),
    )
