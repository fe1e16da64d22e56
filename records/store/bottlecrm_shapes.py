"""What BottleCRM holds, as the `bottlecrm` connector sees it: its contacts and cases (their API
paths and enumerations), the fields of each a binding may name with the catalogue kinds they can hold,
and the checks a stores file's `bottlecrm` binding must pass. The store itself is
`records.store.bottlecrm`."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from records.catalogue import RECORD_TYPES, Kind

SYSTEM = "BottleCRM"
DEFAULT_TIMEOUT_SECONDS = 10.0
READ_ONE_BY_ONE = 20  # `fetch_many` of more records than this reads BottleCRM's list instead
LIST_PAGE = 500
CONNECTOR = "bottlecrm"  # its rows in the ledger; BottleCRM's ids are UUIDs, unique whichever instance holds them


@dataclass(frozen=True)
class Resource:
    """How one record type lives in BottleCRM: its API path, the key its detail answer nests the
    record under, the fields a new one must have, and how its enumerations read."""

    path: str
    detail_key: str
    list_key: str
    label: str
    # BottleCRM field -> (catalogue value -> BottleCRM value, BottleCRM value -> catalogue value)
    enums: Mapping[str, tuple[Mapping[str, str], Mapping[str, str]]] = field(default_factory=dict)


_PRIORITY = (
    {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"},
    {"Low": "low", "Normal": "normal", "High": "high", "Urgent": "urgent"},
)
_CASE_STATUS = (
    {"open": "New", "pending": "Pending", "closed": "Closed"},
    {
        "New": "open",
        "Assigned": "open",
        "Pending": "pending",
        "Closed": "closed",
        "Rejected": "closed",
        "Duplicate": "closed",
    },
)

RESOURCES: dict[str, Resource] = {
    "customer": Resource(path="contacts", detail_key="contact_obj", list_key="contact_obj_list", label="contact"),
    "ticket": Resource(
        path="cases",
        detail_key="cases_obj",
        list_key="cases",
        label="case",
        enums={"status": _CASE_STATUS, "priority": _PRIORITY},
    ),
}

# Fields of a contact or case a binding may name, by record type, with the catalogue kinds they can hold.
# `name` on a contact is its first and last name together (the customer's full name).
_TEXTUAL = {Kind.TEXT, Kind.EMAIL}
WRITABLE: dict[str, dict[str, set[Kind]]] = {
    "customer": {
        "name": _TEXTUAL,
        "email": {Kind.EMAIL, Kind.TEXT},
        "phone": _TEXTUAL,
        "organization": _TEXTUAL,
        "title": _TEXTUAL,
        "department": _TEXTUAL,
        "address_line": _TEXTUAL,
        "city": _TEXTUAL,
        "state": _TEXTUAL,
        "postcode": _TEXTUAL,
        "description": _TEXTUAL,
        "source_ref": _TEXTUAL,
        "do_not_call": {Kind.BOOL},
    },
    "ticket": {
        "name": _TEXTUAL,
        "description": _TEXTUAL,
        "status": {Kind.ENUM},
        "priority": {Kind.ENUM},
        "case_type": _TEXTUAL,
    },
}

# What BottleCRM itself does when a field is written (a binding declares these for its fields).
KNOWN_SIDE_EFFECTS = {("ticket", "status"): "emails the case's contact"}


SETTINGS = ("url", "token", "timeout")


def validate(
    settings: Mapping[str, Any], fields: Mapping[str, str], *, record_type: str | None = None
) -> list[tuple[str, str]]:
    """Problems with a `bottlecrm` binding (of `record_type`, when known), each (key, reason)."""
    problems: list[tuple[str, str]] = []
    if record_type is not None and record_type not in RESOURCES:
        return [("connector", f"BottleCRM holds customers (contacts) and tickets (cases), not {record_type}")]
    for key in ("url", "token"):
        if not isinstance(settings.get(key), str) or not settings[key]:
            problems.append((key, "is required"))
    if "timeout" in settings and timeout_seconds(settings["timeout"]) is None:
        problems.append(("timeout", "must be a number of seconds, more than 0 and at most 600"))
    for key in sorted(set(settings) - set(SETTINGS)):
        problems.append((key, f"unknown key for the bottlecrm connector; known: {', '.join(SETTINGS)}"))
    types = [record_type] if record_type is not None else list(RESOURCES)
    for catalogue_name, system_name in fields.items():
        key = f"fields.{catalogue_name}"
        spec = {t: RECORD_TYPES[t].field(catalogue_name) for t in types if RECORD_TYPES[t].has_field(catalogue_name)}
        if not spec:
            problems.append((key, f"{' or '.join(types)} has no field {catalogue_name}"))
            continue
        fits = {t: WRITABLE[t].get(system_name) for t in spec}
        if all(kinds is None for kinds in fits.values()):
            labels = " or ".join(RESOURCES[t].label for t in spec)
            names = ", ".join(sorted({name for t in spec for name in WRITABLE[t]}))
            problems.append((key, f"a BottleCRM {labels} has no field {system_name}; it has {names}"))
        elif not any(kinds is not None and spec[t].kind in kinds for t, kinds in fits.items()):
            kind = next(iter(spec.values())).kind
            problems.append((key, f"{system_name} cannot hold {catalogue_name} (a {kind} field)"))
    if len(set(fields.values())) != len(fields):
        problems.append(("fields", "two catalogue fields are mapped to the same BottleCRM field"))
    return problems


def timeout_seconds(value: Any) -> float | None:
    """A binding's `timeout` as seconds, or None when it is not a number of seconds in (0, 600]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds <= 600 else None


def supports(action: str) -> bool:
    """Whether BottleCRM can do `action` and undo it: update, and archive (a contact or case made
    inactive and active again). Delete is final in BottleCRM and merge does not move related rows."""
    return action in ("update", "archive")
