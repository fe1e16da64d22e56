import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import add_scope_arguments, resolve_scope
from approvals.stops.services import stop_engage
from audit.services import Actor
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Engage the stop switch: no write in the scope is applied until a person releases it."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("--reason", required=True, help="why; shown in the banner and kept in the trail")
        parser.add_argument("--user", metavar="USERNAME", help="the person engaging it (default: the shell user)")

    def handle(self, *args: object, **options: object) -> None:
        scope, workflow, batch = resolve_scope(options)
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
            if user is None:
                raise CommandError(f"--user: no active user '{options['user']}'")
        actor = Actor.user(user) if user else Actor.system(f"cli:{getpass.getuser()}")
        try:
            switch = stop_engage(
                scope=scope, reason=str(options["reason"]), actor=actor, user=user, workflow=workflow, batch=batch
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Stopped {switch.label} (switch {switch.pk}). No write in it is applied until a person releases it."
        )
