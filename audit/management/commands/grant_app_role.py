import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.roles import RoleError, app_role_grant


class Command(BaseCommand):
    help = (
        "Create the database role the app runs as (unless it exists) and grant it every table but the "
        "trail's, where it may only insert and read. Run as the owner, after migrate; idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the app's role, e.g. countersign_app")
        parser.add_argument(
            "--password-env",
            default="APP_DATABASE_PASSWORD",
            help="the environment variable holding the role's password (default APP_DATABASE_PASSWORD)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            grant = app_role_grant(role=options["role"], password=os.environ.get(options["password_env"], ""))
        except RoleError as refused:
            raise CommandError(str(refused)) from None
        verb = "Created" if grant.created else "Updated"
        self.stdout.write(
            f"{verb} role {grant.role} on {grant.database}: every table, insert and read only on the trail."
        )
