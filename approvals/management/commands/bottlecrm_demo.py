import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.demo.bottlecrm import STORES_FILE, bottlecrm_demo_copy
from records.store import StoreUnavailable


class Command(BaseCommand):
    help = (
        "Copy the demo's customers and tickets into a local BottleCRM as contacts and cases "
        f"(then `manage.py load_stores {STORES_FILE.name}` points the demo at it; `make crm` does both)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default=os.environ.get("BOTTLECRM_URL"), help="default: $BOTTLECRM_URL")
        parser.add_argument("--token", default=os.environ.get("BOTTLECRM_TOKEN"), help="default: $BOTTLECRM_TOKEN")

    def handle(self, *args: object, url: str | None, token: str | None, **options: object) -> None:
        if not url or not token:
            raise CommandError("set BOTTLECRM_URL and BOTTLECRM_TOKEN (scripts/bottlecrm.sh setup writes them)")
        try:
            copied = bottlecrm_demo_copy(url=url, token=token)
        except StoreUnavailable as error:
            raise CommandError(str(error)) from None
        self.stdout.write(copied.summary)
