from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.intake.accounts import service_account_named, service_account_revoke
from audit.services import Actor
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Revoke a workflow's service account: its token is refused (401) from now on. Audited."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", required=True, metavar="SLUG", help="the workflow's slug")
        parser.add_argument("--name", required=True, help="the service account's name")

    def handle(self, *args: object, workflow: str, name: str, **options: object) -> None:
        try:
            account = service_account_named(workflow_slug=workflow, name=name)
            revoked = service_account_revoke(account=account, actor=Actor.system("revoke_service_account"))
        except ApplicationError as error:
            raise CommandError(f"--{error.field}: {error.message}" if error.field else error.message) from None
        self.stdout.write(
            f"Service account {revoked} revoked at {revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC: its token "
            f"(cs_{revoked.token_prefix}_…) is refused from now on."
        )
