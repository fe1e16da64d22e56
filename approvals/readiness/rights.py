"""Who may take part in readiness work on a workflow.

A five-step review is run by the workflow's owner and by staff or ops managers who may see the
workflow: they start it, tick its steps, mark its fields, decide and sign. Anyone who may see the
workflow may read the review; a person who may not see it is told nothing of it.

A workflow moves to a later stage by its owner, when every check passes; it is forced past failing
checks from the workflow file by its owner or an ops manager, with a reason. Being staff or a
superuser grants neither, as nowhere else in Countersign.
"""

from approvals.models import Workflow
from approvals.workflows.rights import Viewer, is_ops_manager, owns_workflow, workflow_visible_to


def may_run_review(*, user: Viewer, workflow: Workflow) -> bool:
    """The owner, and staff or ops managers who see the workflow."""
    if owns_workflow(user=user, workflow=workflow):
        return True
    if not user.is_authenticated or not user.is_active or not workflow_visible_to(user=user, workflow=workflow):
        return False
    return bool(getattr(user, "is_staff", False)) or is_ops_manager(user)


def may_promote(*, user: Viewer, workflow: Workflow) -> bool:
    return owns_workflow(user=user, workflow=workflow)


def may_force_stage(*, user: Viewer, workflow: Workflow) -> bool:
    return user.is_active and (owns_workflow(user=user, workflow=workflow) or is_ops_manager(user))
