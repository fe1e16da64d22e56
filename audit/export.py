"""The trail as CSV or JSON, produced piece by piece so an export of any size streams in flat memory.

Times are ISO 8601 in UTC to the millisecond; the hashes are included so an export can be checked
against the chain. JSON keeps every value exactly; CSV neutralises cells a spreadsheet would run
as a formula. A character the API refuses (`core.text`), held by an event stored before it did, is
written as its escape: in JSON that is the same value, and in either it keeps the export whole.

Every column is the event as stored, so that it still checks against its hash. `approver_label`
names who approved; a rejection names who rejected as its actor and in its details (`rejected_by`).
Rejections recorded before that was so named their person in `approver_label`: the action column
(`proposal.rejected`) tells those rows apart.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audit.models import AuditEvent
from core.text import escape_refused

COLUMNS = [
    "id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "record_type",
    "record_id",
    "field",
    "old_value",
    "new_value",
    "proposal_id",
    "change_id",
    "batch_id",
    "workflow_slug",
    "model_name",
    "model_version",
    "prompt_version",
    "approver_label",
    "decided_at",
    "reason",
    "details",
    "prev_hash",
    "hash",
]
_JSON_COLUMNS = {"old_value", "new_value", "details"}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _time(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds") if moment else None


def event_as_dict(event: AuditEvent) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(event, name) for name in COLUMNS}
    row["id"] = event.pk
    row["occurred_at"] = _time(event.occurred_at)
    row["decided_at"] = _time(event.decided_at)
    row["change_id"] = str(event.change_id) if event.change_id else None
    return row


class _Line:
    """A file-like target for csv.writer that hands back what was written."""

    def write(self, text: str) -> str:
        return text


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _JSON_COLUMNS:
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
    return spreadsheet_safe(str(value))


def spreadsheet_safe(text: str) -> str:
    """`text` as a CSV cell a spreadsheet shows rather than runs: a cell that would start a formula
    is written after an apostrophe; a plain number such as -3 stays as it is."""
    if text.startswith(_FORMULA_STARTS):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for event in events:
        row = event_as_dict(event)
        yield escape_refused(writer.writerow([_cell(name, row[name]) for name in COLUMNS]))


def json_chunks(events: Iterable[AuditEvent]) -> Iterator[str]:
    """A JSON array of events, one element per chunk."""
    yield "["
    separator = "\n"
    for event in events:
        yield separator + escape_refused(json.dumps(event_as_dict(event), cls=DjangoJSONEncoder, ensure_ascii=False))
        separator = ",\n"
    yield "\n]\n"
