"""What a system of record itself does when Countersign writes a field (BottleCRM emails a case's
contact when its status changes), as the binding declares it. A write that sets such a field reaches
people outside Countersign, so it is never approved without review: the workflow loader refuses
`write` on it, intake keeps such a proposal for a person, and the review screen says what will happen.
"""

from dataclasses import dataclass

from records.catalogue import RECORD_TYPES
from records.store.connectors import UnknownConnector, connector_class
from records.store.protocol import StoreUnavailable
from records.store.registry import bindings_current, get_store


@dataclass(frozen=True)
class SideEffect:
    record_type: str
    field: str
    system: str
    effect: str

    @property
    def sentence(self) -> str:
        """'Writing status in BottleCRM emails the case's contact'."""
        label = RECORD_TYPES[self.record_type].field(self.field).label
        return f"Writing {label} in {self.system} {self.effect}"


def store_side_effects(*, record_type: str) -> dict[str, SideEffect]:
    """The side effects declared for `record_type`'s fields by the store it is bound to, by field.

    A store that cannot be built in this process (its token is not in this environment) still has
    its binding's declaration: the workflow loader and intake never take a missing variable for
    "no side effects"."""
    try:
        store = get_store(record_type)
        declared: dict[str, str] = getattr(store, "side_effects", None) or {}
        system: str = getattr(store, "system_label", "")
    except StoreUnavailable:
        binding = bindings_current()[record_type]
        declared = dict(binding.side_effects)
        try:
            system = getattr(connector_class(binding.connector), "system_label", binding.connector)
        except UnknownConnector:
            system = binding.connector
    return {
        name: SideEffect(record_type=record_type, field=name, system=system or "the system of record", effect=effect)
        for name, effect in declared.items()
    }
