"""Reads about stop switches: which are engaged, and whether one covers a workflow or batch."""

from django.db.models import Q, QuerySet

from approvals.models import StopSwitch


def stop_list_engaged() -> QuerySet[StopSwitch]:
    return (
        StopSwitch.objects.filter(released_at__isnull=True)
        .select_related("workflow", "batch", "batch__workflow")
        .order_by("engaged_at")
    )


def stop_covering(*, workflow_id: int | None, batch_id: int | None, lock: bool = False) -> StopSwitch | None:
    """The engaged switch that halts writes for this workflow or batch (global first), or None.

    With `lock`, the switch rows are read FOR SHARE, so an engage that commits while a write is in
    flight is seen by the next write, never missed by this one.
    """
    scope = Q(scope="global")
    if workflow_id is not None:
        scope |= Q(scope="workflow", workflow_id=workflow_id)
    if batch_id is not None:
        scope |= Q(scope="batch", batch_id=batch_id)
    queryset = StopSwitch.objects.filter(scope, released_at__isnull=True).order_by("scope", "engaged_at")
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()
