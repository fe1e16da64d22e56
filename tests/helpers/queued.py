"""A task that approvals queued, as the `queued` fixture records it."""

from typing import Any, NamedTuple


class Queued(NamedTuple):
    name: str
    args: list[Any] | None
    kwargs: dict[str, Any] | None = None
