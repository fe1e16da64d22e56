"""Who may move a workflow to a later stage: its owner, when every check passes; and who may force
one past failing checks from the workflow file: its owner or an ops manager, with a reason. Being
staff or a superuser grants neither, as nowhere else in Countersign."""

from approvals.models import Workflow
from approvals.workflows.rights import Viewer, is_ops_manager, owns_workflow


def may_promote(*, user: Viewer, workflow: Workflow) -> bool:
    return owns_workflow(user=user, workflow=workflow)


def may_force_stage(*, user: Viewer, workflow: Workflow) -> bool:
    return user.is_active and (owns_workflow(user=user, workflow=workflow) or is_ops_manager(user))
