from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import add_scope_arguments, add_user_argument, operator_from, resolve_scope
from approvals.stops.services import stop_engage
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Engage the stop switch: no write in the scope is applied until a person releases it."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("--reason", required=True, help="why; shown in the banner and kept in the trail")
        add_user_argument(parser, help="the person engaging it (default: the shell user)")

    def handle(self, *args: object, **options: object) -> None:
        scope, workflow, batch = resolve_scope(options)
        operator = operator_from(options)
        try:
            switch = stop_engage(
                scope=scope,
                reason=str(options["reason"]),
                actor=operator.actor,
                user=operator.user,
                workflow=workflow,
                batch=batch,
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Stopped {switch.label} (switch {switch.pk}). No write in it is applied until a person releases it."
        )
