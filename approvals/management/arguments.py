"""What the operator commands share: naming the person who runs them, a workflow, a batch or a stop scope."""

import getpass
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError, CommandParser

from approvals.models import Batch, StopScope, Workflow
from audit.services import Actor


def add_user_argument(parser: CommandParser, *, help: str, required: bool = False) -> None:
    parser.add_argument("--user", metavar="USERNAME", required=required, help=help)


def user_named(username: str) -> User:
    """The active person `--user` names, or the CommandError that says there is none."""
    user_model = get_user_model()
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username, "is_active": True}).first()
    if user is None:
        raise CommandError(f"--user: no active user '{username}'")
    return user


@dataclass(frozen=True)
class Operator:
    """Who runs a command: the person `--user` names (their rights apply), or without one the shell's login."""

    user: User | None
    actor: Actor


def operator_from(options: dict) -> Operator:
    if not options["user"]:
        return Operator(user=None, actor=Actor.system(f"cli:{getpass.getuser()}"))
    user = user_named(str(options["user"]))
    return Operator(user=user, actor=Actor.user(user))


def workflow_named(slug: str) -> Workflow:
    workflow = Workflow.objects.filter(slug=slug).first()
    if workflow is None:
        raise CommandError(f"--workflow: no workflow '{slug}'")
    return workflow


def batch_numbered(batch_id: int) -> Batch:
    batch = Batch.objects.select_related("workflow").filter(pk=batch_id).first()
    if batch is None:
        raise CommandError(f"--batch: no batch {batch_id}")
    return batch


def add_scope_arguments(parser: CommandParser) -> None:
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--all", action="store_true", help="every workflow and batch")
    scope.add_argument("--workflow", metavar="SLUG", help="one workflow")
    scope.add_argument("--batch", metavar="ID", type=int, help="one batch")


def resolve_scope(options: dict) -> tuple[str, Workflow | None, Batch | None]:
    if options["all"]:
        return StopScope.GLOBAL, None, None
    if options["workflow"]:
        return StopScope.WORKFLOW, workflow_named(options["workflow"]), None
    batch = batch_numbered(options["batch"])
    return StopScope.BATCH, batch.workflow, batch


def target_of(scope: str, workflow: Workflow | None, batch: Batch | None) -> str:
    if scope == StopScope.GLOBAL:
        return "global"
    if scope == StopScope.WORKFLOW and workflow is not None:
        return f"workflow:{workflow.pk}"
    return f"batch:{batch.pk if batch else ''}"
