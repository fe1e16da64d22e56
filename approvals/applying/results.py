"""What applying one approved proposal came to: its outcome and what a caller needs to act on it."""

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from records.models import Change
from records.store import StoreUnavailable


class Outcome(StrEnum):
    APPLIED = "applied"
    CONFLICT = "conflict"
    STOPPED = "stopped"  # a stop switch covers it: it stays approved and applies on release
    WAITING = "waiting"  # its workflow's stage or canary cap holds it: it stays approved
    BLOCKED = "blocked"  # the stop switches could not be read: nothing written, tried again later
    RETRY = "retry"  # applying raised: it stays approved and is tried again later
    DEFERRED = "deferred"  # held up by the database or the task's time: nothing written, not counted, tried again
    ISOLATED = "isolated"  # a chunk it was in did not finish: queued again alone, and not tried in this one
    FAILED = "failed"  # it kept failing: given up, the error kept
    NOT_APPROVED = "not_approved"  # already applied or decided otherwise: nothing to do
    IN_FLIGHT = "in_flight"  # its intent is stored; the store is written next (never a final outcome)


@dataclass(frozen=True)
class ApplyResult:
    proposal_id: int
    outcome: Outcome
    detail: str = ""
    change_id: UUID | None = None
    attempts: int = 0
    stop_scope: str = ""
    liftable: bool = False  # an override of a batch or a proposal could let others it covers through
    prompt_hold: bool = False  # WAITING on its prompt version's cap, not its workflow's: only that version waits
    unreachable: StoreUnavailable | None = None  # its record type's store did not answer
    intent: Change | None = None  # IN_FLIGHT: the Change to write to its store next
    recovering: bool = False  # IN_FLIGHT: an earlier attempt stored the intent and may have written it

    @property
    def gives_attempt_back(self) -> bool:
        """Whether the attempt counted when its chunk started is given back at the chunk's end: it ended
        without a failure of its own (a failure, or giving up, carries its `attempts`), and it was not
        applied (an applied proposal gives the attempt back in the statement that marks it)."""
        failed = self.outcome in (Outcome.RETRY, Outcome.FAILED) and self.attempts > 0
        return not failed and self.outcome != Outcome.APPLIED


class StopStateUnknown(Exception):
    pass
