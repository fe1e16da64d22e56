import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.undo.drill import rollback_drill_run


class Command(BaseCommand):
    help = (
        "The rollback drill on throwaway records: submit, approve and apply a batch with follow-ups, undo the "
        "whole batch, verify every record, follow-up and the trail, and time each phase. Runs here, no worker "
        "needed. Exits 1 when it fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--records", type=int, default=20, help="throwaway customers (default 20)")

    def handle(self, *args: object, records: int, **options: object) -> None:
        if records < 2:
            raise CommandError("--records: at least 2")
        drill = rollback_drill_run(records=records, say=self.stdout.write)
        if not drill.passed:
            sys.exit(1)
