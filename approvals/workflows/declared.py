"""What a workflow file declares of the map (the systems its data passes through, the outside services
that see it) and of its release (what its drills must finish within, its days in canary)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from approvals.models import Direction, OutsideServiceKind
from core.timeutils import format_window, parse_window
from records.catalogue import RECORD_TYPES

# Reports a problem with one key of the workflow being checked.
Bad = Callable[[str, str], None]

_SYSTEM_KEYS = {"name", "direction", "fields"}
_SERVICE_KEYS = {"name", "kind", "region", "keeps", "sees"}
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


def check_systems(raw: dict, bad: Bad) -> list[dict[str, Any]]:
    """The systems its data passes through, and which way."""
    systems = raw.get("systems", []) or []
    if not isinstance(systems, list):
        bad("systems", "must be a list of {name, direction, fields}")
        return []
    checked: list[dict[str, Any]] = []
    for index, system in enumerate(systems):
        key = f"systems[{index}]"
        if not isinstance(system, dict) or set(system) - _SYSTEM_KEYS:
            bad(key, "must be {name, direction, fields}")
            continue
        name = system.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(f"{key}.name", "is required")
            continue
        key = f"systems.{name.strip()[:80]}"
        direction = system.get("direction")
        if direction is None:
            bad(f"{key}.direction", f"is required: {', '.join(Direction.values[:-1])} or {Direction.values[-1]}")
        elif direction not in Direction.values:
            bad(f"{key}.direction", f"'{direction}' is not one of {', '.join(Direction.values)}")
        fields = _field_names(system.get("fields"), f"{key}.fields", bad)
        checked.append({"name": name.strip(), "direction": direction, "fields": fields})
    names = [system["name"] for system in checked]
    for name in sorted({name for name in names if names.count(name) > 1}):
        bad(f"systems.{name[:80]}", "is declared twice")
    return checked


def check_outside_services(raw: dict, policies: dict[tuple[str, str], str], bad: Bad) -> list[dict[str, Any]]:
    """Every outside service that sees its data, and what it sees: only fields the workflow may read."""
    services = raw.get("outside_services", []) or []
    if not isinstance(services, list):
        bad("outside_services", "must be a list of {name, kind, region, keeps, sees}")
        return []
    checked: list[dict[str, Any]] = []
    for index, service in enumerate(services):
        key = f"outside_services[{index}]"
        if not isinstance(service, dict) or set(service) - _SERVICE_KEYS:
            bad(key, "must be {name, kind, region, keeps, sees}")
            continue
        name = service.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(f"{key}.name", "is required")
            continue
        key = f"outside_services.{name.strip()[:80]}"
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
                    f"the outside service '{name.strip()}' would see {name_seen}, which this workflow may not read",
                )
        checked.append({"name": name.strip(), "kind": kind, "region": region.strip(), "keeps": kept, "sees": sees})
    names = [service["name"] for service in checked]
    for name in sorted({name for name in names if names.count(name) > 1}):
        bad(f"outside_services.{name[:80]}", "is declared twice")
    return checked


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
