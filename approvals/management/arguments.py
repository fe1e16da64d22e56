"""What `stop` and `release` share: naming a scope from the command line."""

from django.core.management.base import CommandError, CommandParser

from approvals.models import Batch, StopScope, Workflow


def add_scope_arguments(parser: CommandParser) -> None:
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--all", action="store_true", help="every workflow and batch")
    scope.add_argument("--workflow", metavar="SLUG", help="one workflow")
    scope.add_argument("--batch", metavar="ID", type=int, help="one batch")


def resolve_scope(options: dict) -> tuple[str, Workflow | None, Batch | None]:
    if options["all"]:
        return StopScope.GLOBAL, None, None
    if options["workflow"]:
        workflow = Workflow.objects.filter(slug=options["workflow"]).first()
        if workflow is None:
            raise CommandError(f"--workflow: no workflow '{options['workflow']}'")
        return StopScope.WORKFLOW, workflow, None
    batch = Batch.objects.select_related("workflow").filter(pk=options["batch"]).first()
    if batch is None:
        raise CommandError(f"--batch: no batch {options['batch']}")
    return StopScope.BATCH, batch.workflow, batch


def target_of(scope: str, workflow: Workflow | None, batch: Batch | None) -> str:
    if scope == StopScope.GLOBAL:
        return "global"
    if scope == StopScope.WORKFLOW and workflow is not None:
        return f"workflow:{workflow.pk}"
    return f"batch:{batch.pk if batch else ''}"
