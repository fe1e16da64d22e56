"""What a workflow file declares of the map (the systems its data passes through, the outside services
that see it) and of its release (what its drills must finish within, its days in canary)."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from approvals.models import Direction, OutsideServiceKind
from core.timeutils import format_window, parse_window
from records.catalogue import RECORD_TYPES

# Reports a problem with one key of the workflow being checked.
Bad = Callable[[str, str], None]

_SYSTEM_KEYS = ("name", "direction", "fields")
_SERVICE_KEYS = ("name", "kind", "region", "keeps", "sees")
DEFAULT_TARGETS = {"rollback_target": timedelta(minutes=10), "trace_target": timedelta(minutes=5)}


def _field_names(value: Any, key: str, bad: Bad) -> list[str]:
    """A list of catalogue fields written `record_type.field`."""
    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(name, str) for name in value):
        bad(key, "must be a list of fields written record_type.field, such as [customer.shipping_address]")
        return []
    names: list[str] = []
    for name in value:
        record_type, _, field_name = name.partition(".")
        if record_type not in RECORD_TYPES:
            bad(f"{key}.{name[:80]}", f"unknown record type '{record_type}'; known: {', '.join(RECORD_TYPES)}")
        elif not RECORD_TYPES[record_type].has_field(field_name):
            bad(f"{key}.{name[:80]}", f"'{field_name}' is not a field of {record_type} in the catalogue")
        elif name not in names:
            names.append(name)
    return names


def _named_entries(raw: dict, section: str, keys: tuple[str, ...], bad: Bad) -> Iterator[tuple[str, str, dict]]:
    """Each entry of the list under `section` that is a mapping of `keys` with a name: its key as
    problems name it (`section.NAME`), its name, and the entry. Misshapen entries are reported."""
    entries = raw.get(section, []) or []
    shape = "{" + ", ".join(keys) + "}"
    if not isinstance(entries, list):
        bad(section, f"must be a list of {shape}")
        return
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - set(keys):
            bad(f"{section}[{index}]", f"must be {shape}")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(f"{section}[{index}].name", "is required")
            continue
        yield f"{section}.{name.strip()[:80]}", name.strip(), entry


def _once_each(checked: list[dict[str, Any]], section: str, bad: Bad) -> list[dict[str, Any]]:
    names = [entry["name"] for entry in checked]
    for name in sorted({name for name in names if names.count(name) > 1}):
        bad(f"{section}.{name[:80]}", "is declared twice")
    return checked


def check_systems(raw: dict, bad: Bad) -> list[dict[str, Any]]:
    """The systems its data passes through, and which way."""
    checked: list[dict[str, Any]] = []
    for key, name, system in _named_entries(raw, "systems", _SYSTEM_KEYS, bad):
        direction = system.get("direction")
        if direction is None:
            bad(f"{key}.direction", f"is required: {', '.join(Direction.values[:-1])} or {Direction.values[-1]}")
        elif direction not in Direction.values:
            bad(f"{key}.direction", f"'{direction}' is not one of {', '.join(Direction.values)}")
        fields = _field_names(system.get("fields"), f"{key}.fields", bad)
        checked.append({"name": name, "direction": direction, "fields": fields})
    return _once_each(checked, "systems", bad)


def check_outside_services(raw: dict, policies: dict[tuple[str, str], str], bad: Bad) -> list[dict[str, Any]]:
    """Every outside service that sees its data, and what it sees: only fields the workflow may read."""
    checked: list[dict[str, Any]] = []
    for key, name, service in _named_entries(raw, "outside_services", _SERVICE_KEYS, bad):
        kind = service.get("kind")
        if kind not in OutsideServiceKind.values:
            bad(f"{key}.kind", f"'{kind}' is not one of {', '.join(OutsideServiceKind.values)}")
        region = service.get("region", "")
        if not isinstance(region, str):
            bad(f"{key}.region", "must be text, such as eu-west")
            region = ""
        keeps = service.get("keeps")
        try:
            kept = format_window(parse_window(keeps)) if keeps is not None else None
        except ValueError as error:
            bad(f"{key}.keeps", f"{error}; 0s if it keeps nothing")
            kept = None
        if keeps is None:
            bad(f"{key}.keeps", "is required: how long the service keeps what it sees, such as 30d (0s if nothing)")
        sees = _field_names(service.get("sees"), f"{key}.sees", bad)
        for name_seen in sees:
            record_type, _, field_name = name_seen.partition(".")
            if (record_type, field_name) not in policies:
                bad(
                    f"{key}.sees.{name_seen}",
                    f"the outside service '{name}' would see {name_seen}, which this workflow may not read",
                )
        checked.append({"name": name, "kind": kind, "region": region.strip(), "keeps": kept, "sees": sees})
    return _once_each(checked, "outside_services", bad)


def check_targets(raw: dict, bad: Bad) -> dict[str, Any]:
    """What its drills must finish within, and its days in canary."""
    targets: dict[str, Any] = {}
    for key, default in DEFAULT_TARGETS.items():
        value = raw.get(key)
        try:
            targets[key] = parse_window(value) if value is not None else default
        except ValueError as error:
            bad(key, str(error))
            targets[key] = default
        if targets[key] <= timedelta(0):
            bad(key, "must be longer than 0s")
    days = raw.get("canary_days", 3)
    if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365:
        bad("canary_days", "must be a whole number of days from 0 to 365")
        days = 3
    targets["canary_days"] = days
    return targets
