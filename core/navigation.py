"""The main navigation. Each app registers its pages when it is ready."""

from dataclasses import dataclass


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
