"""The map: for every workflow a person may see, the systems its data comes from and goes to, the
fields it may read, suggest or write, the store of each record type it touches, and every outside
service that sees its data, with what it sees and how long it keeps it.

Narrowed by a system, a field or an outside service, the map keeps only the workflows that touch it
and marks the rows that do: "who can touch billing_status?" is the map narrowed to that field.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.db.models import Prefetch

from approvals.models import Access, Direction, FieldPolicy, OutsideServiceKind, Stage, Workflow
from approvals.readiness.checks import readiness_by_workflow
from approvals.workflows.rights import Viewer, workflows_visible_to
from records.catalogue import RECORD_TYPES
from records.selectors import StoreSummary, store_summaries

# How each direction is drawn; the words are for screen readers and for print.
ARROWS: dict[str, str] = {Direction.TO_AI: "→", Direction.FROM_AI: "←", Direction.BOTH: "↔"}
FILTER_KEYS = ("system", "field", "service")
_LONGEST_FILTER = 200


@dataclass(frozen=True)
class MapFilter:
    """What the map is narrowed to: a system's name, a field (`customer.priority`, or a bare
    `priority` for that field of every record type) and an outside service's name. Empty: all."""

    system: str = ""
    field: str = ""
    service: str = ""

    @classmethod
    def of(cls, query: Mapping[str, Any]) -> "MapFilter":
        """The filter a query string asks for; each value trimmed, nothing refused."""
        values = {key: str(query.get(key) or "").strip()[:_LONGEST_FILTER] for key in FILTER_KEYS}
        return cls(**values)

    @property
    def active(self) -> bool:
        return bool(self.system or self.field or self.service)

    @property
    def query(self) -> str:
        """The filter as a query string, for the links that keep it (the CSV export)."""
        return urlencode({key: getattr(self, key) for key in FILTER_KEYS if getattr(self, key)})

    @property
    def described(self) -> str:
        """The filter in words: `system CRM and field customer.billing_status`."""
        parts = [
            f"{label} {value}"
            for label, value in (("system", self.system), ("field", self.field), ("outside service", self.service))
            if value
        ]
        return " and ".join(parts)

    def matches_system(self, name: str) -> bool:
        return bool(self.system) and name.casefold() == self.system.casefold()

    def matches_service(self, name: str) -> bool:
        return bool(self.service) and name.casefold() == self.service.casefold()

    def matches_field(self, name: str) -> bool:
        """`name` is `record_type.field`; a bare field in the filter matches it on every record type."""
        if not self.field:
            return False
        return name == self.field or ("." not in self.field and name.partition(".")[2] == self.field)


@dataclass(frozen=True)
class Named:
    """A field named in a system's or an outside service's row, marked when the filter names it."""

    name: str
    matched: bool = False


@dataclass(frozen=True)
class MapField:
    """One field a workflow holds a policy on."""

    name: str  # record_type.field
    access: str
    access_label: str
    sensitivity: str
    matched: bool = False


@dataclass(frozen=True)
class MapSystem:
    """One system the workflow's data passes through, and which way."""

    name: str
    direction: str
    direction_label: str
    arrow: str
    fields: tuple[Named, ...]
    matched: bool = False


@dataclass(frozen=True)
class MapService:
    """One outside service that sees the workflow's data."""

    name: str
    kind: str
    kind_label: str
    region: str
    keeps: str
    sees: tuple[Named, ...]
    matched: bool = False


@dataclass(frozen=True)
class ForcedStage:
    """A stage the workflow was put in against readiness, as the promotion recorded it."""

    stage: str
    stage_label: str
    reason: str
    by: str
    at: datetime | None


@dataclass(frozen=True)
class WorkflowMap:
    """One workflow on the map."""

    workflow: Workflow
    stores: tuple[StoreSummary, ...]
    fields: tuple[MapField, ...]
    systems: tuple[MapSystem, ...]
    services: tuple[MapService, ...]
    forced: ForcedStage | None

    @property
    def touched(self) -> list[str]:
        """Every field it holds a policy on, its systems carry or its outside services see."""
        names = [row.name for row in self.fields]
        names += [n.name for row in self.systems for n in row.fields]
        return names + [n.name for row in self.services for n in row.sees]

    def store_of(self, names: Iterable[str]) -> list[StoreSummary]:
        """The stores of the record types of `names` (each `record_type.field`)."""
        record_types = {name.partition(".")[0] for name in names}
        return [store for store in self.stores if store.record_type in record_types]


@dataclass(frozen=True)
class DataMap:
    """The map as one person may see it, narrowed by `filter`, with every system, field and
    outside service name of the workflows in sight for the filter's choices."""

    workflows: tuple[WorkflowMap, ...]
    filter: MapFilter
    in_sight: int
    systems: tuple[str, ...]
    fields: tuple[str, ...]
    services: tuple[str, ...]


def _forced(value: Any) -> ForcedStage | None:
    if not isinstance(value, dict):
        return None
    stage = str(value.get("stage") or "")
    try:
        at = datetime.fromisoformat(str(value.get("at")))
    except ValueError:
        at = None
    return ForcedStage(
        stage=stage,
        stage_label=Stage(stage).label if stage in Stage.values else stage,
        reason=str(value.get("reason") or ""),
        by=str(value.get("by") or ""),
        at=at,
    )


def _entries(value: Any) -> list[dict[str, Any]]:
    """The entries of a stored list of systems or services (the workflow file writes dicts only)."""
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def _named(names: Any, map_filter: MapFilter) -> tuple[Named, ...]:
    names = names if isinstance(names, list) else []
    return tuple(Named(name=str(name), matched=map_filter.matches_field(str(name))) for name in names)


def _label(choices: Any, value: str) -> str:
    return choices(value).label if value in choices.values else value


def _fields(workflow: Workflow, map_filter: MapFilter) -> tuple[MapField, ...]:
    fields = []
    for policy in workflow.policies.all():
        name = f"{policy.record_type}.{policy.field}"
        spec = RECORD_TYPES.get(policy.record_type)
        sensitivity = spec.field(policy.field).sensitivity if spec and spec.has_field(policy.field) else ""
        fields.append(
            MapField(
                name=name,
                access=policy.access,
                access_label=_label(Access, policy.access),
                sensitivity=str(sensitivity),
                matched=map_filter.matches_field(name),
            )
        )
    return tuple(fields)


def _systems(workflow: Workflow, map_filter: MapFilter) -> tuple[MapSystem, ...]:
    systems = []
    for system in _entries(workflow.systems):
        name, direction = str(system.get("name") or ""), str(system.get("direction") or "")
        named = _named(system.get("fields"), map_filter)
        systems.append(
            MapSystem(
                name=name,
                direction=direction,
                direction_label=_label(Direction, direction),
                arrow=ARROWS.get(direction, "–"),
                fields=named,
                matched=map_filter.matches_system(name) or any(n.matched for n in named),
            )
        )
    return tuple(systems)


def _services(workflow: Workflow, map_filter: MapFilter) -> tuple[MapService, ...]:
    services = []
    for service in _entries(workflow.outside_services):
        name, kind = str(service.get("name") or ""), str(service.get("kind") or "")
        sees = _named(service.get("sees"), map_filter)
        services.append(
            MapService(
                name=name,
                kind=kind,
                kind_label=_label(OutsideServiceKind, kind),
                region=str(service.get("region") or ""),
                keeps=str(service.get("keeps") or ""),
                sees=sees,
                matched=map_filter.matches_service(name) or any(n.matched for n in sees),
            )
        )
    return tuple(services)


def _workflow_map(
    workflow: Workflow, summaries: Mapping[str, StoreSummary], map_filter: MapFilter, *, against: bool
) -> WorkflowMap:
    entry = WorkflowMap(
        workflow=workflow,
        stores=(),
        fields=_fields(workflow, map_filter),
        systems=_systems(workflow, map_filter),
        services=_services(workflow, map_filter),
        forced=_forced(workflow.forced_stage) if against else None,
    )
    record_types = sorted({name.partition(".")[0] for name in entry.touched} & set(summaries))
    return replace(entry, stores=tuple(summaries[record_type] for record_type in record_types))


def _passes(entry: WorkflowMap, map_filter: MapFilter) -> bool:
    """Whether the workflow touches everything the filter names."""
    if map_filter.system and not any(map_filter.matches_system(row.name) for row in entry.systems):
        return False
    if map_filter.service and not any(map_filter.matches_service(row.name) for row in entry.services):
        return False
    if map_filter.field:
        return any(map_filter.matches_field(name) for name in entry.touched)
    return True


def data_map(*, user: Viewer, map_filter: MapFilter | None = None) -> DataMap:
    """The map of every workflow `user` may see, narrowed by `map_filter`. A fixed number of queries
    whatever the number of workflows: what `user` may see (once per request), the workflows, their
    policies and the record stores; and what the readiness checks read, when a workflow was forced
    into its stage."""
    map_filter = map_filter or MapFilter()
    workflows = list(
        workflows_visible_to(user=user)
        .prefetch_related(Prefetch("policies", queryset=FieldPolicy.objects.order_by("record_type", "field")))
        .order_by("slug")
    )
    summaries = store_summaries()
    # "Released against readiness" lasts while the stage it was forced into still fails its checks.
    forced = readiness_by_workflow([workflow for workflow in workflows if workflow.forced_stage])
    entries = [
        _workflow_map(
            workflow,
            summaries,
            map_filter,
            against=workflow.pk in forced and forced[workflow.pk].released_against_readiness,
        )
        for workflow in workflows
    ]
    systems = {row.name for entry in entries for row in entry.systems}
    services = {row.name for entry in entries for row in entry.services}
    fields = {name for entry in entries for name in entry.touched}
    return DataMap(
        workflows=tuple(entry for entry in entries if _passes(entry, map_filter)),
        filter=map_filter,
        in_sight=len(entries),
        systems=tuple(sorted(systems, key=str.casefold)),
        fields=tuple(sorted(fields)),
        services=tuple(sorted(services, key=str.casefold)),
    )
