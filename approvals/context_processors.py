from dataclasses import dataclass

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from approvals.models import StopSwitch
from approvals.selectors.stops import NO_STOP_RIGHTS, StopRights, stop_list_engaged, stop_rights_for_user


@dataclass(frozen=True)
class StopChrome:
    """What every page shows of the stop switch: the engaged switches, and what this person may do."""

    engaged: list[StopSwitch]
    rights: StopRights
    releasable: frozenset[int]


def _chrome(request: HttpRequest) -> StopChrome:
    user = request.user
    if not user.is_authenticated:
        return StopChrome(engaged=[], rights=NO_STOP_RIGHTS, releasable=frozenset())
    engaged = list(stop_list_engaged())
    rights = stop_rights_for_user(user=user)
    return StopChrome(
        engaged=engaged,
        rights=rights,
        releasable=frozenset(switch.pk for switch in engaged if rights.may_release(switch)),
    )


def stop_switch(request: HttpRequest) -> dict:
    """`stop_switch` for base.html: read only when a page renders the banner or the Stop control."""
    return {"stop_switch": SimpleLazyObject(lambda: _chrome(request))}
