"""Reads about stop switches: which are engaged, and whether one covers a workflow or batch."""

from dataclasses import dataclass
from datetime import UTC

from django.db import connection
from django.db.models import QuerySet

from approvals.models import FollowUp, FollowUpStatus, Proposal, ProposalStatus, StopScope, StopSwitch
from core.errors import NotFound
from core.roundtrip import Rows, Statement, built_once, run_together
from core.visibility import ViewerScope

# What naming a switch and asking who may release it read: its workflow, that workflow's override
# groups (who is on duty), and its batch.
SWITCH_RELATED = ("workflow__override_day_group", "workflow__override_after_hours_group", "batch__workflow")


def stop_list_engaged() -> QuerySet[StopSwitch]:
    return StopSwitch.objects.filter(released_at__isnull=True).select_related(*SWITCH_RELATED).order_by("engaged_at")


def stop_in_sight(switch: StopSwitch, scope: ViewerScope) -> bool:
    """A global stop is there for everyone to see, since it holds every write; any other only for
    those who see the workflow it stops. Needs its workflow and its batch's workflow loaded."""
    if switch.scope == StopScope.GLOBAL:
        return True
    workflow = switch.workflow or (switch.batch.workflow if switch.batch is not None else None)
    return workflow is not None and scope.sees_workflow(workflow.slug)


def stop_for_viewer(*, stop_id: int, scope: ViewerScope) -> StopSwitch:
    """The switch, if `scope` may see it; NotFound otherwise, as if there were none."""
    switch = StopSwitch.objects.select_related(*SWITCH_RELATED).filter(pk=stop_id).first()
    if switch is None or not stop_in_sight(switch, scope):
        raise NotFound(f"no stop switch {stop_id} that you may see")
    return switch


@dataclass(frozen=True)
class StopsQuery:
    """The engaged switches over a workflow or batch, as one statement to send along with others."""

    statement: Statement
    targets: tuple[str, ...]

    def switches(self, rows: Rows) -> list[StopSwitch]:
        """The switches the statement found, global first, then workflow, then batch."""
        engaged = {target: pk for pk, target in rows}
        if not engaged:
            return []
        switches = StopSwitch.objects.select_related("workflow", "batch").in_bulk(list(engaged.values()))
        return [switches[engaged[target]] for target in self.targets if target in engaged]


def _stops_sql(targets: int, lock: bool) -> str:
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('id')}, {quote('target')} FROM {quote(StopSwitch._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('target')} IN ({', '.join(['%s'] * targets)}) AND {quote('released_at')} IS NULL"
    )
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql


def stops_engaged_query(*, workflow_id: int | None, batch_id: int | None, lock: bool = False) -> StopsQuery:
    """`stops_engaged_over` as a statement to send along with others (see `core.roundtrip`)."""
    targets = ["global"]  # a switch's target names its scope: "global", "workflow:<id>", "batch:<id>"
    if workflow_id is not None:
        targets.append(f"workflow:{workflow_id}")
    if batch_id is not None:
        targets.append(f"batch:{batch_id}")
    # Plain SQL: this runs inside every write's transaction, and is almost always empty.
    sql = built_once(("stops engaged", len(targets), lock), lambda: _stops_sql(len(targets), lock))
    return StopsQuery(Statement(sql, targets, prepared=True), tuple(targets))


def stops_engaged_over(*, workflow_id: int | None, batch_id: int | None, lock: bool = False) -> list[StopSwitch]:
    """The engaged switches that halt writes for this workflow or batch: global, workflow, batch, in that order.

    With `lock`, they are locked, so none is released while the write that read them is in flight;
    an engage that commits meanwhile is seen by the next write.
    """
    query = stops_engaged_query(workflow_id=workflow_id, batch_id=batch_id, lock=lock)
    return query.switches(run_together([query.statement])[0])


def stop_covering(*, workflow_id: int | None, batch_id: int | None, lock: bool = False) -> StopSwitch | None:
    """The engaged switch that halts writes for this workflow or batch (global first), or None."""
    engaged = stops_engaged_over(workflow_id=workflow_id, batch_id=batch_id, lock=lock)
    return engaged[0] if engaged else None


def describe_stop(switch: StopSwitch) -> str:
    """Why a write waits on `switch`: what it stops, who engaged it, when and why."""
    when = switch.engaged_at.astimezone(UTC)
    return f"stopped ({switch.label}) by {switch.engaged_by_label} at {when:%Y-%m-%d %H:%M:%S} UTC: {switch.reason}"


@dataclass(frozen=True)
class BatchLeftToHold:
    """What of a batch a stop switch over it still holds back: proposals a person may still decide or
    the worker may still write, and follow-ups of applied changes not yet sent."""

    proposals: int
    follow_ups: int

    @property
    def nothing(self) -> bool:
        return not (self.proposals or self.follow_ups)

    def describe(self) -> str:
        parts = []
        if self.proposals:
            parts.append(
                f"{self.proposals} proposal{'s' if self.proposals != 1 else ''} pending, approved or in conflict"
            )
        if self.follow_ups:
            parts.append(f"{self.follow_ups} follow-up{'s' if self.follow_ups != 1 else ''} not yet sent")
        return " and ".join(parts)


OPEN_STATUSES = (ProposalStatus.PENDING, ProposalStatus.APPROVED, ProposalStatus.CONFLICT)


def batch_left_to_hold(*, batch_id: int) -> BatchLeftToHold:
    """Two queries."""
    return BatchLeftToHold(
        proposals=Proposal.objects.filter(batch_id=batch_id, status__in=OPEN_STATUSES).count(),
        follow_ups=FollowUp.objects.filter(proposal__batch_id=batch_id, status=FollowUpStatus.HELD).count(),
    )
