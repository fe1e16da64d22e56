from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.anchors import anchors_verify
from audit.services import audit_verify_chain


class Command(BaseCommand):
    help = (
        "Walk the audit hash chain from the start; exit non-zero at the first broken link, naming it. "
        "With --anchors, then check the chain against every signed anchor kept outside the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--anchors", action="store_true", help="also check every anchor (signature, event, hash, count)"
        )
        parser.add_argument(
            "--anchors-file", type=Path, default=None, help="the anchors to check (default: AUDIT_ANCHOR_FILE)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_verify_chain()
        if broken is not None:
            raise CommandError(
                f"audit chain broken at event #{broken.event_id}: {broken.problem} "
                f"({checked} event(s) before it verified)"
            )
        self.stdout.write(f"Audit chain verified: {checked} event(s), no broken link.")
        if not options["anchors"]:
            return
        try:
            anchors, breaks = anchors_verify(path=options["anchors_file"])
        except FileNotFoundError as missing:
            raise CommandError(
                f"no anchor file at {missing.filename}: nothing outside the database vouches for the chain"
            ) from None
        if breaks:
            for item in breaks:
                self.stderr.write(f"broken {item}")
            raise CommandError(f"{len(breaks)} of {anchors} anchor(s) broken; the first: {breaks[0]}")
        self.stdout.write(f"Anchors verified: {anchors} anchor(s) match the chain.")
