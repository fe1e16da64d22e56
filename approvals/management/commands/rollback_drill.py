import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import workflow_named
from approvals.undo.drill import rollback_drill_run
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "The rollback drill on throwaway records: submit, approve and apply a batch, undo the whole batch, verify "
        "every record and the trail, and time each phase. Without --workflow it runs on its own workflow, with "
        "follow-ups, merges, archives and deletes; with --workflow it runs as that workflow and times the stop, "
        "the undo and the check against the workflow's rollback target. Runs here, no worker needed. Exits 1 "
        "when it fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--records", type=int, default=20, help="throwaway records (default 20)")
        parser.add_argument("--workflow", metavar="SLUG", help="run the drill as this workflow")

    def handle(self, *args: object, records: int, **options: object) -> None:
        if records < 2:
            raise CommandError("--records: at least 2")
        workflow = workflow_named(str(options["workflow"])) if options["workflow"] else None
        try:
            drill = rollback_drill_run(records=records, say=self.stdout.write, workflow=workflow)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if not drill.passed:
            sys.exit(1)
