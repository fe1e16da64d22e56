"""What a workflow file declares of noticing: the time a decision may take and when a pending
proposal expires, the circuit breaker's limits per prompt version, and the channels told of events."""

from datetime import timedelta
from typing import Any

from approvals.models.notices import NOTIFY_EVENTS
from approvals.workflows.declared import Bad
from core.timeutils import format_window, parse_window
from records.store.placeholders import has_literal_password

BREAKER_KEYS = {"window", "min_samples", "max_reject_rate", "max_conflict_rate", "max_undo_rate"}
BREAKER_RATES = ("max_reject_rate", "max_conflict_rate", "max_undo_rate")


def _window(raw: dict, key: str, bad: Bad) -> timedelta | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        window = parse_window(value)
    except ValueError as error:
        bad(key, str(error))
        return None
    if window <= timedelta(0):
        bad(key, "must be longer than 0s")
        return None
    return window


def _check_breaker(raw: dict, bad: Bad) -> dict[str, Any] | None:
    breaker = raw.get("circuit_breaker")
    if breaker is None:
        return None
    if not isinstance(breaker, dict) or set(breaker) - BREAKER_KEYS:
        bad("circuit_breaker", f"must be a mapping of {', '.join(sorted(BREAKER_KEYS))}")
        return None
    checked: dict[str, Any] = {}
    for key in ("window", "min_samples"):
        value = breaker.get(key, 200 if key == "window" else 20)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
            bad(f"circuit_breaker.{key}", "must be a whole number from 1 to 100000")
            return None
        checked[key] = value
    if checked["min_samples"] > checked["window"]:
        bad("circuit_breaker.min_samples", "must not be more than the window: the breaker could never judge")
    rates = [key for key in BREAKER_RATES if key in breaker]
    if not rates:
        bad("circuit_breaker", f"names no limit; set at least one of {', '.join(BREAKER_RATES)}")
    for key in rates:
        value = breaker[key]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
            bad(f"circuit_breaker.{key}", "must be a rate from 0 to 1, such as 0.2")
            continue
        checked[key] = float(value)
    return checked


def _check_notify(raw: dict, bad: Bad) -> list[dict[str, Any]]:
    notify = raw.get("notify", []) or []
    if not isinstance(notify, list):
        bad("notify", "must be a list of {channel, events}")
        return []
    checked: list[dict[str, Any]] = []
    for index, entry in enumerate(notify):
        key = f"notify[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"channel", "events"}:
            bad(key, "must be {channel, events}")
            continue
        channel = entry.get("channel")
        if not isinstance(channel, str) or not channel.strip():
            bad(f"{key}.channel", "is required: an Apprise URL, or ${NAME} to read it from the environment")
            continue
        if has_literal_password(channel):
            bad(f"{key}.channel", "holds a password: write ${NAME} and set the URL in the environment")
            continue
        events = entry.get("events")
        if not isinstance(events, list) or not events or any(event not in NOTIFY_EVENTS for event in events):
            bad(f"{key}.events", f"must be a list drawn from {', '.join(NOTIFY_EVENTS)}")
            continue
        checked.append({"channel": channel.strip(), "events": list(dict.fromkeys(events))})
    return checked


def check_noticing(raw: dict, bad: Bad) -> dict[str, Any]:
    """`decide_within`, `expire_after`, `circuit_breaker` and `notify`, checked."""
    decide = _window(raw, "decide_within", bad)
    expire = _window(raw, "expire_after", bad)
    if decide is not None and expire is not None and expire <= decide:
        bad("expire_after", f"must be longer than decide_within ({format_window(decide)}): a proposal is overdue first")
    return {
        "decide_within": decide,
        "expire_after": expire,
        "circuit_breaker": _check_breaker(raw, bad),
        "notify": _check_notify(raw, bad),
    }
