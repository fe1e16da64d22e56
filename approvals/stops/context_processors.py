from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from approvals.applying.selectors import BatchInProgress, batches_in_progress
from approvals.models import StopScope, StopSwitch
from approvals.stops.rights import NO_STOP_RIGHTS, StopRights, stop_rights_for_user
from approvals.stops.selectors import stop_list_engaged


@dataclass(frozen=True)
class StopChrome:
    """What every page shows of the stop switch: the engaged switches, what this person may do, and the
    batches still writing that this person may stop."""

    engaged: list[StopSwitch]
    rights: StopRights
    releasable: frozenset[int]
    in_progress: list[BatchInProgress]


def _chrome(request: HttpRequest) -> StopChrome:
    user = request.user
    if not user.is_authenticated:
        return StopChrome(engaged=[], rights=NO_STOP_RIGHTS, releasable=frozenset(), in_progress=[])
    engaged = list(stop_list_engaged())
    rights = stop_rights_for_user(user=user)
    return StopChrome(
        engaged=engaged,
        rights=rights,
        releasable=frozenset(switch.pk for switch in engaged if rights.may_release(switch)),
        in_progress=_unstopped_batches_in_progress(rights, engaged),
    )


def _unstopped_batches_in_progress(rights: StopRights, engaged: list[StopSwitch]) -> list[BatchInProgress]:
    """The batches this person may stop that are writing now; a halted one is named by its stop banner."""
    if not rights.any or any(switch.scope == StopScope.GLOBAL for switch in engaged):
        return []
    stopped_workflows = {switch.workflow_id for switch in engaged if switch.scope == StopScope.WORKFLOW}
    stopped_batches = {switch.batch_id for switch in engaged if switch.scope == StopScope.BATCH}
    workflow_ids = None if rights.everything else rights.workflow_ids
    return [
        batch
        for batch in batches_in_progress(workflow_ids=workflow_ids)
        if batch.batch_id not in stopped_batches and batch.workflow_id not in stopped_workflows
    ]


def stop_switch(request: HttpRequest) -> dict:
    """`stop_switch` for base.html: read only when a page renders the banner or the Stop control."""
    return {"stop_switch": SimpleLazyObject(lambda: _chrome(request))}
