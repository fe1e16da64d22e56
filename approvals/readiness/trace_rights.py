"""Who may take, answer and see a trace drill.

A person is drilled only on a workflow they can see: otherwise the app would hide from them the very
change they must find. Only the drill's person answers it; whoever sees the workflow may read it.
"""

from approvals.models import TraceDrill, Workflow
from approvals.workflows.rights import Viewer, workflow_visible_to
from core.errors import NotAllowed


def check_may_take(*, user: Viewer, workflow: Workflow) -> None:
    """NotAllowed unless `user` is an active person who sees `workflow` (and so could find its changes)."""
    if not user.is_authenticated or not user.is_active:
        raise NotAllowed("only an active person can take a trace drill", field="user")
    if not workflow_visible_to(user=user, workflow=workflow):
        raise NotAllowed(
            f"{user.get_username()} cannot see workflow {workflow.slug}, so could not find its changes",
            field="user",
        )


def may_answer(*, user: Viewer, drill: TraceDrill) -> bool:
    return user.is_authenticated and user.is_active and drill.user_id == user.pk


def check_may_answer(*, user: Viewer, drill: TraceDrill) -> None:
    if not may_answer(user=user, drill=drill):
        raise NotAllowed(f"only {drill.user.get_username()} answers this drill", field="user")


def may_see(*, user: Viewer, drill: TraceDrill) -> bool:
    """The drill's person, and whoever sees its workflow."""
    return may_answer(user=user, drill=drill) or workflow_visible_to(user=user, workflow=drill.workflow)
