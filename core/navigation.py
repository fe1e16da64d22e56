"""The main navigation. Each app registers its pages when it is ready, and approvals the rule that
says which of them a person starts on (it knows who has work where)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    order: int


_entries: dict[str, NavEntry] = {}


def register(label: str, url_name: str, *, order: int) -> None:
    _entries[url_name] = NavEntry(label=label, url_name=url_name, order=order)


def entries() -> list[NavEntry]:
    return sorted(_entries.values(), key=lambda entry: entry.order)


LandingRule = Callable[[Any], str]
_landing: list[LandingRule] = []


def register_landing(rule: LandingRule) -> None:
    """Set the one rule that names, for a person, the URL name of the page they start on."""
    _landing[:] = [rule]


def landing_for(user: Any) -> str:
    """The URL name of `user`'s start page: the registered rule's answer, else the first page of the
    navigation."""
    if _landing:
        return _landing[0](user)
    return entries()[0].url_name if _entries else "admin:index"
