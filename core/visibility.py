"""What one person may see of records and the trail, for the layers that cannot work it out.

Which workflows a person may see, and which fields of which record type those workflows may read,
suggest or write, is a rule of approvals (`approvals.workflows.rights`), which sits above audit and
records. Approvals registers its answer here when it is ready; the trail and record pages ask
`scope_for(user)`. Until an answer is registered nobody sees anything.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Withheld(str):
    """A value the viewer may not see, standing in its place on pages and in exports."""

    __slots__ = ()


WITHHELD = Withheld("(withheld)")


@dataclass(frozen=True)
class ViewerScope:
    """The workflows one person may see, the fields those workflows cover by record type, and whether
    they see everything (an auditor). `may_export` is the right to export the trail they see."""

    workflow_slugs: frozenset[str] = frozenset()
    fields_by_record_type: Mapping[str, frozenset[str]] = field(default_factory=dict)
    everything: bool = False
    may_export: bool = False

    def sees_workflow(self, slug: str) -> bool:
        """Events, changes and proposals that name no workflow are for those who see everything."""
        return self.everything or (bool(slug) and slug in self.workflow_slugs)

    def sees_field(self, record_type: str, name: str) -> bool:
        return self.everything or name in self.fields_by_record_type.get(record_type, frozenset())

    def sees_record_type(self, record_type: str) -> bool:
        return self.everything or bool(self.fields_by_record_type.get(record_type))

    def shown(self, record_type: str, name: str, value: Any) -> Any:
        """`value` of field `name`, or WITHHELD when the viewer may not see that field."""
        return value if self.sees_field(record_type, name) else WITHHELD

    def shown_values(self, record_type: str, values: Any) -> Any:
        """A mapping of field names to values with each field the viewer may not see withheld; a
        record snapshot's nested `values` is treated the same. Anything else is withheld whole."""
        if self.everything or values is None:
            return values
        if not isinstance(values, dict):
            return WITHHELD
        return {
            name: self.shown_values(record_type, value) if name == "values" else self.shown(record_type, name, value)
            for name, value in values.items()
        }


NOTHING = ViewerScope()

ScopeProvider = Callable[[Any], ViewerScope]
_provider: list[ScopeProvider] = []
_CACHE_ATTRIBUTE = "_countersign_viewer_scope"


def register(provider: ScopeProvider) -> None:
    """Set the one rule that answers `scope_for` (approvals does, when it is ready)."""
    _provider[:] = [provider]


def scope_for(user: Any) -> ViewerScope:
    """What `user` may see. Read once per user object, as Django caches permissions on it, so a page
    and its banners ask as often as they like for the price of one answer."""
    if user is None or not getattr(user, "is_authenticated", False) or not _provider:
        return NOTHING
    cached = getattr(user, _CACHE_ATTRIBUTE, None)
    if cached is None:
        cached = _provider[0](user)
        setattr(user, _CACHE_ATTRIBUTE, cached)
    return cached
