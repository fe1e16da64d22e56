"""What a decision is about: what a page showed, to whom, and since when.

A page that offers a decision carries a signed token naming what it showed (a proposal at one
revision, or one group of a batch), the person it was shown to, and when it was rendered. A decision
that comes without such a token, with one for something or someone else, or sooner than the settle
time after its page was rendered, decides nothing: nobody can have looked at what it decides. The
review screen refuses such a press itself (`static/js/sight.js`, which reads `SETTLE_MS` from the
page); this is the second line, for whatever gets past the screen.
"""

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum

from django.core import signing
from django.utils import timezone

from approvals.models import Proposal
from approvals.workflows.rights import Viewer

SETTLE_MS = 500
SETTLE = timedelta(milliseconds=SETTLE_MS)
_SALT = "approvals.review.sight"


class Unseen(StrEnum):
    """Why a decision was not about something its page showed the person long enough."""

    MISSING = "missing"  # no token: the decision did not come from a page that showed anything
    FORGED = "forged"  # the token's signature does not hold
    ELSEWHERE = "elsewhere"  # the page showed something else, an older revision, or someone else
    TOO_SOON = "too_soon"  # shown for less than the settle time

    def message(self, what: str) -> str:
        """What the person is told, `what` naming the thing they tried to decide ("proposal 12")."""
        if self is Unseen.TOO_SOON:
            seconds = f"{SETTLE.total_seconds():g}"
            return f"Look first: {what} had been on your screen for less than {seconds} seconds, so nothing was decided"
        if self is Unseen.ELSEWHERE:
            return f"nothing was decided: the page you decided from did not show you {what} as it is now; look again"
        return f"nothing was decided: the decision did not come from a page that showed you {what}; open it and look"


def proposal_shown(proposal: Proposal) -> str:
    """What a page showing `proposal` as it is now has shown."""
    return f"proposal {proposal.pk} revision {proposal.revision}"


def group_shown(*, batch_id: int, ids: Iterable[int]) -> str:
    """What a page showing these proposals of a batch, to decide together, has shown."""
    listed = ",".join(str(pk) for pk in sorted(ids))
    return f"batch {batch_id} group {hashlib.sha256(listed.encode()).hexdigest()}"


def sight_token(*, shown: str, user: Viewer, at: datetime | None = None) -> str:
    """The token a page carries: it showed `shown` to `user` at `at` (now, when the page is rendered)."""
    at = at or timezone.now()
    return signing.dumps({"shown": shown, "user": user.pk, "at": round(at.timestamp() * 1000)}, salt=_SALT)


def unseen(*, token: str, shown: str, user: Viewer, now: datetime | None = None) -> Unseen | None:
    """Why a decision carrying `token` is not about `shown` as `user` saw it long enough; None when it is."""
    if not token:
        return Unseen.MISSING
    try:
        page = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return Unseen.FORGED
    if not isinstance(page, dict) or page.get("shown") != shown or page.get("user") != user.pk:
        return Unseen.ELSEWHERE
    at = page.get("at")
    if not isinstance(at, int):
        return Unseen.FORGED
    now = now or timezone.now()
    if now.timestamp() * 1000 - at < SETTLE_MS:
        return Unseen.TOO_SOON
    return None
