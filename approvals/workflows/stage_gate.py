"""The gate every change of stage from the workflow file passes through.

Whether a workflow may move to a later stage is decided by its readiness checks, which read drills,
reviews and the trail and so sit above workflows (`approvals.readiness`). Readiness registers its gate
here when the app is ready; the loader hands it, inside its transaction, each workflow whose stage the
file changes, already written with everything else the file says. Until a gate is registered no
workflow changes stage.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from approvals.models import Workflow
from audit.services import Actor, EventData


@dataclass(frozen=True)
class StageMove:
    """A workflow the file moves from `stage_before` (entered at `entered_before`) to its stage now."""

    workflow: Workflow
    stage_before: str
    entered_before: datetime


@dataclass(frozen=True)
class StageForce:
    """Forward moves made anyway, by `user`, for `reason` (`load_workflows --force-stage`)."""

    reason: str
    user: Any  # django.contrib.auth.models.User


@dataclass
class GateVerdict:
    """What the gate found: the moves it refuses (where, why) and the events that record the rest."""

    refusals: list[tuple[str, str]] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)


StageGate = Callable[[list[StageMove], StageForce | None, Actor], GateVerdict]
_gate: list[StageGate] = []


def register(gate: StageGate) -> None:
    """Set the one gate that `stage_moves_check` asks (readiness does, when the app is ready)."""
    _gate[:] = [gate]


def stage_moves_check(*, moves: list[StageMove], force: StageForce | None, actor: Actor) -> GateVerdict:
    """The registered gate's verdict on `moves` made by `actor`; without a gate every move is refused."""
    if not moves:
        return GateVerdict()
    if not _gate:
        return GateVerdict(
            refusals=[(f"workflow '{move.workflow.slug}': stage", "no readiness gate is installed") for move in moves]
        )
    return _gate[0](moves, force, actor)
