from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import add_user_argument, operator_from
from approvals.workflows.stores import stores_load
from core.errors import ValidationFailed


class Command(BaseCommand):
    help = (
        "Bind record types to systems of record from a stores file (YAML). A record type the file "
        "does not name is on the built-in store."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        add_user_argument(parser, help="the person loading it (default: the shell user)")

    def handle(self, *args: object, file: Path, **options: object) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: not readable YAML: {error}") from None
        try:
            result = stores_load(document=document, actor=operator_from(options).actor)
        except ValidationFailed as error:
            lines = "\n".join(f"{file}: {where}: {message}" for where, message in error.problems)
            raise CommandError(f"nothing loaded:\n{lines}") from None
        for outcome, label in (
            ("bound", "bound"),
            ("changed", "changed"),
            ("unchanged", "unchanged"),
            ("to_builtin", "back on the built-in store"),
        ):
            record_types = getattr(result, outcome)
            if record_types:
                self.stdout.write(f"{label}: {', '.join(record_types)}")
