"""Time helpers: parse windows such as "7d", show times in the viewer's zone."""

import re
from datetime import datetime, timedelta

from django.utils import timezone

_WINDOW = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_window(text: str) -> timedelta:
    """Parse "30s", "15m", "12h" or "7d". Raises ValueError naming what is wrong."""
    match = _WINDOW.match(str(text))
    if not match:
        raise ValueError(f"'{text}' is not a window such as 30s, 15m, 12h or 7d")
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{_UNITS[unit]: amount})


def format_window(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def humanize_age(moment: datetime, *, now: datetime | None = None) -> str:
    now = now or timezone.now()
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
