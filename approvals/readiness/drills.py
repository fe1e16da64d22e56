"""A rollback drill's result as its page shows it: each phase against the workflow's rollback target."""

from dataclasses import dataclass
from datetime import timedelta

from approvals.models import RollbackDrill, Workflow
from approvals.undo.drill import ROLLBACK_PHASES
from approvals.workflows.rights import Viewer, workflow_visible_to
from core.errors import NotFound
from core.timeutils import format_window


@dataclass(frozen=True)
class DrillPhase:
    name: str
    seconds: float
    timed: bool  # one of the phases the rollback target counts (stop, undo, check)


@dataclass(frozen=True)
class DrillReport:
    drill: RollbackDrill
    workflow: Workflow | None
    phases: list[DrillPhase]
    target: timedelta | None  # the workflow's rollback target, for a drill run as a workflow
    rollback_seconds: float | None  # stop + undo + check, for a drill that timed them

    @property
    def target_label(self) -> str:
        return format_window(self.target) if self.target is not None else ""

    @property
    def within_target(self) -> bool | None:
        if self.target is None or self.rollback_seconds is None:
            return None
        return self.rollback_seconds <= self.target.total_seconds()


def rollback_drill_report(*, drill_id: int, user: Viewer) -> DrillReport:
    """The drill numbered `drill_id`, for someone who may see its workflow; NotFound otherwise. Two queries."""
    drill = RollbackDrill.objects.filter(pk=drill_id).first()
    workflow = Workflow.objects.filter(slug=drill.workflow_slug).first() if drill is not None else None
    if drill is None or workflow is None or not workflow_visible_to(user=user, workflow=workflow):
        raise NotFound(f"no rollback drill {drill_id}")
    timings = {str(name): float(seconds) for name, seconds in (drill.timings or {}).items()}
    timed = all(phase in timings for phase in ROLLBACK_PHASES)
    return DrillReport(
        drill=drill,
        workflow=workflow,
        phases=[DrillPhase(name, seconds, timed and name in ROLLBACK_PHASES) for name, seconds in timings.items()],
        target=workflow.rollback_target if timed else None,
        rollback_seconds=round(sum(timings[phase] for phase in ROLLBACK_PHASES), 3) if timed else None,
    )
