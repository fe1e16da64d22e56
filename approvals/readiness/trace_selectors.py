"""Reading trace drills: one drill as a person sees it (its complaint, its clock, its questions or its
result), and a workflow's recent drills."""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from approvals.models import TraceDrill, Workflow
from approvals.readiness.trace_answers import Question, questions_for, trace_facts
from approvals.readiness.trace_rights import may_answer, may_see
from approvals.workflows.rights import Viewer
from core.errors import NotFound

RECENT_DRILLS = 20


@dataclass(frozen=True)
class TraceDrillView:
    drill: TraceDrill
    may_answer: bool
    questions: list[Question] = field(default_factory=list)  # while it is open, for its person
    results: list[dict[str, Any]] = field(default_factory=list)  # once answered, in the order asked
    # Its answers are kept from a viewer who is taking a drill of their own on the same workflow:
    # the change picked for them may be this one.
    withheld: bool = False

    @property
    def is_open(self) -> bool:
        return self.drill.passed is None

    @property
    def elapsed_seconds(self) -> int:
        end = self.drill.finished_at or timezone.now()
        return max(0, int((end - self.drill.started_at).total_seconds()))

    @property
    def elapsed_clock(self) -> str:
        """The time taken so far, or in all, as a clock reads it: "4:07", "1:02:05"."""
        hours, rest = divmod(self.elapsed_seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"

    @property
    def target_seconds(self) -> int:
        return int(self.drill.target.total_seconds())

    @property
    def in_time(self) -> bool:
        return (
            self.drill.finished_at is not None and self.drill.finished_at - self.drill.started_at <= self.drill.target
        )

    @property
    def wrong(self) -> list[str]:
        return [result["question"] for result in self.results if not result["right"]]


def trace_drill_for_viewer(*, drill_id: int, user: Viewer) -> TraceDrillView:
    """One drill as `user` sees it. NotFound when there is none or its workflow is out of their sight."""
    drill = TraceDrill.objects.select_related("workflow", "user").filter(pk=drill_id).first()
    if drill is None or not may_see(user=user, drill=drill):
        raise NotFound(f"no trace drill {drill_id}")
    answering = may_answer(user=user, drill=drill)
    if drill.passed is None:
        questions = questions_for(trace_facts(change_id=drill.change_id)) if answering else []
        return TraceDrillView(drill=drill, may_answer=answering, questions=questions)
    if not answering and TraceDrill.objects.filter(workflow=drill.workflow, user=user.pk, passed__isnull=True).exists():
        return TraceDrillView(drill=drill, may_answer=False, withheld=True)
    verdicts = drill.verdicts if isinstance(drill.verdicts, dict) else {}
    results = sorted((dict(verdict, key=key) for key, verdict in verdicts.items()), key=lambda v: v["position"])
    return TraceDrillView(drill=drill, may_answer=answering, results=results)


def trace_drills_recent(*, workflow: Workflow) -> list[TraceDrill]:
    """The workflow's latest drills, newest first, each with its person. One query."""
    return list(
        TraceDrill.objects.filter(workflow=workflow).select_related("user").order_by("-started_at")[:RECENT_DRILLS]
    )
