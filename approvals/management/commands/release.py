from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import add_scope_arguments, add_user_argument, resolve_scope, target_of, user_named
from approvals.models import StopSwitch
from approvals.stops.services import stop_release
from core.errors import ApplicationError


class Command(BaseCommand):
    help = "Release an engaged stop switch; what it held is then applied. Only a person releases it."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        add_user_argument(parser, required=True, help="the person releasing it")
        parser.add_argument("--note", default="", help="kept in the trail")

    def handle(self, *args: object, **options: object) -> None:
        scope, workflow, batch = resolve_scope(options)
        user = user_named(str(options["user"]))
        target = target_of(scope, workflow, batch)
        switch = StopSwitch.objects.filter(target=target, released_at__isnull=True).first()
        if switch is None:
            raise CommandError(f"no stop switch is engaged for {target}")
        try:
            stop_release(switch=switch, user=user, note=str(options["note"]))
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Released {switch.label}. What it held is queued to apply.")
