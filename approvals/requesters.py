"""Who asked for a change: the person a proposal names (by account, or by username in any case), or
the person who started its batch. They never decide it and never override what blocks it, so the
rights to decide (`review.rights`) and to override (`overrides.rights`) both ask here.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q

from approvals.models import Batch, Proposal

Viewer = AbstractBaseUser | AnonymousUser


def _same_name(recorded: str, user: Viewer) -> bool:
    return bool(recorded) and recorded.casefold() == user.get_username().casefold()


def started_batch(*, batch: Batch, user: Viewer) -> bool:
    return user.is_authenticated and _same_name(batch.requested_by, user)


def requester_reason(*, proposal: Proposal, user: Viewer) -> str:
    """Why `user` counts as the requester of `proposal`, as a sentence; empty when they do not.
    Reads the proposal's batch: select it with the proposal."""
    if not user.is_authenticated:
        return ""
    if proposal.requested_by_user_id is not None and proposal.requested_by_user_id == user.pk:
        return "You asked for this change"
    if _same_name(proposal.requested_by, user):
        return "You asked for this change"
    if proposal.batch_id is not None and proposal.batch is not None and started_batch(batch=proposal.batch, user=user):
        return f"You started the batch it belongs to ({proposal.batch.name})"
    return ""


def asked_for_by(user: Viewer) -> Q:
    """The proposals `user` counts as the requester of (see `requester_reason`), as a filter."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    asked = Q(requested_by_user_id=user.pk)
    if username := user.get_username():
        asked |= Q(requested_by__iexact=username) | Q(batch__requested_by__iexact=username)
    return asked
