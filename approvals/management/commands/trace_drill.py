import getpass

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from approvals.management.arguments import user_named, workflow_named
from approvals.readiness.trace_drill import trace_drill_start
from audit.services import Actor
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Start a timed trace drill: pick an applied change of the workflow at random and give the person only "
        "what a complaint would say about it. Prints the complaint, the page where they answer and the time limit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", metavar="SLUG", required=True, help="the workflow whose change is traced")
        parser.add_argument("--user", metavar="USERNAME", required=True, help="the person who takes the drill")
        parser.add_argument(
            "--site", metavar="URL", default="", help="this Countersign's address, to print the page's full URL"
        )

    def handle(self, *args: object, workflow: str, user: str, site: str, **options: object) -> None:
        person = user_named(user)
        chosen = workflow_named(workflow)
        try:
            drill = trace_drill_start(workflow=chosen, user=person, started_by=Actor.system(f"cli:{getpass.getuser()}"))
        except ApplicationError as error:
            raise CommandError(error.plain) from None
        minutes = round(drill.target.total_seconds() / 60, 1)
        self.stdout.write(f"Trace drill {drill.pk} for {person.get_username()} on {chosen.slug}")
        self.stdout.write(f"Complaint: {drill.complaint}")
        self.stdout.write(f"Answer at: {site.rstrip('/')}{reverse('trace-drill', args=[drill.pk])}")
        self.stdout.write(f"Time limit: {minutes:g} minutes, counted from now")
