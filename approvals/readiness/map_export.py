"""The map as CSV: one row per workflow and item (a field it holds a policy on, a system its data
passes through, an outside service that sees it), narrowed as the page is. Cells a spreadsheet would
run as a formula are written as text, as the trail's exports do."""

import csv
from collections.abc import Iterable, Iterator

from approvals.readiness.map import DataMap, Named, WorkflowMap
from audit.export import spreadsheet_safe
from core.text import escape_refused
from records.selectors import StoreSummary

COLUMNS = [
    "workflow",
    "workflow_name",
    "lane",
    "stage",
    "released_against_readiness",
    "kind",
    "name",
    "access_or_direction",
    "service_kind",
    "fields",
    "region",
    "keeps",
    "store",
    "matches_filter",
]


class _Line:
    """A file-like target for csv.writer that hands back what was written."""

    def write(self, text: str) -> str:
        return text


def _stores(stores: Iterable[StoreSummary]) -> str:
    return "; ".join(f"{store.record_type}: {store.label}" for store in stores)


def _names(named: Iterable[Named]) -> list[str]:
    return [item.name for item in named]


def _items(entry: WorkflowMap) -> Iterator[dict[str, str | bool]]:
    for field in entry.fields:
        yield {
            "kind": "field",
            "name": field.name,
            "access_or_direction": field.access,
            "store": _stores(entry.store_of([field.name])),
            "matched": field.matched,
        }
    for system in entry.systems:
        yield {
            "kind": "system",
            "name": system.name,
            "access_or_direction": system.direction,
            "fields": "; ".join(_names(system.fields)),
            "store": _stores(entry.store_of(_names(system.fields))),
            "matched": system.matched,
        }
    for service in entry.services:
        yield {
            "kind": "outside_service",
            "name": service.name,
            "service_kind": service.kind,
            "fields": "; ".join(_names(service.sees)),
            "region": service.region,
            "keeps": service.keeps,
            "store": _stores(entry.store_of(_names(service.sees))),
            "matched": service.matched,
        }


def _forced(entry: WorkflowMap) -> str:
    forced = entry.forced
    if forced is None:
        return ""
    at = forced.at.isoformat(timespec="seconds") if forced.at else ""
    return f"{forced.stage} by {forced.by} at {at}: {forced.reason}"


def map_rows(data_map: DataMap) -> Iterator[list[str]]:
    """The header, then one row per workflow and item; a workflow with no item has one row of its own."""
    yield COLUMNS
    for entry in data_map.workflows:
        workflow = entry.workflow
        common = {
            "workflow": workflow.slug,
            "workflow_name": workflow.name,
            "lane": workflow.lane,
            "stage": workflow.stage,
            "released_against_readiness": _forced(entry),
        }
        items = list(_items(entry)) or [{"store": _stores(entry.stores)}]
        for item in items:
            row: dict[str, object] = {**common, **item}
            matched = row.pop("matched", False)
            row["matches_filter"] = ("yes" if matched else "no") if data_map.filter.active else ""
            yield [spreadsheet_safe(str(row.get(column, ""))) for column in COLUMNS]


def map_csv_lines(data_map: DataMap) -> Iterator[str]:
    writer = csv.writer(_Line())
    for row in map_rows(data_map):
        yield escape_refused(writer.writerow(row))
