from datetime import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from approvals.intake.accounts import service_account_create
from approvals.management.arguments import workflow_named
from audit.services import Actor
from core.errors import ValidationFailed


class Command(BaseCommand):
    help = "Create a service account for a workflow. The token is printed once, on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", required=True, help="the workflow's slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--expires", help="ISO date and time after which the token stops working")
        parser.add_argument("--callback-url", default="", help="where decisions and outcomes are POSTed")

    def handle(
        self, *args: object, workflow: str, name: str, expires: str | None, callback_url: str, **options: object
    ) -> None:
        found = workflow_named(workflow)
        try:
            issued = service_account_create(
                workflow=found,
                name=name,
                actor=Actor.system("create_service_account"),
                expires_at=_expires_at(expires),
                callback_url=callback_url,
            )
        except ValidationFailed as error:
            raise CommandError("; ".join(f"--{w}: {m}" for w, m in error.problems)) from None
        self.stdout.write(f"Service account {issued.account} created. Its token is shown once; store it now:")
        if issued.account.callback_secret:
            self.stdout.write(f"Callback signing secret: {issued.account.callback_secret}")
        self.stdout.write(issued.token)


def _expires_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = parse_datetime(text)
    except ValueError:  # well formed, but no such moment (30 February)
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CommandError(f"--expires: '{text}' is not an ISO date and time with a zone, e.g. 2027-01-31T00:00Z")
    return moment
