"""What a review page posts with a decision: the token of a page that showed it long enough ago."""

from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from approvals.models import Batch, Proposal
from approvals.review.sight import SETTLE, group_shown, proposal_shown, sight_token

# Twice the settle time, so that rounding the token's milliseconds never makes it too young.
LONG_ENOUGH = SETTLE * 2


def looked_at(proposal: Proposal, user: User) -> dict[str, str]:
    """The revision and token a review screen posts, its page shown to `user` long enough ago."""
    token = sight_token(shown=proposal_shown(proposal), user=user, at=timezone.now() - LONG_ENOUGH)
    return {"revision": str(proposal.revision), "shown": token}


def group_looked_at(batch: Batch, proposals: list[Proposal], user: User) -> dict[str, str]:
    """The ids and token a group page posts, its page shown to `user` long enough ago."""
    ids = [proposal.pk for proposal in proposals]
    token = sight_token(shown=group_shown(batch_id=batch.pk, ids=ids), user=user, at=timezone.now() - LONG_ENOUGH)
    return {"ids": ",".join(str(pk) for pk in ids), "shown": token}


def settled(page: Any, proposal: Proposal | None = None) -> None:
    """Wait in the browser until what the page offers to decide (`proposal`, when named) has been on
    screen for the settle time, as a person who looked at it would."""
    shown = f"[data-proposal='{proposal.pk}']" if proposal is not None else "[data-sight]"
    page.locator(f"{shown}[data-settled]").first.wait_for()
