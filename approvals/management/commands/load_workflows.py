from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.workflows.loading import workflows_load
from audit.services import Actor
from core.errors import ValidationFailed


class Command(BaseCommand):
    help = "Create or update workflows, field policies, groups and retention rules from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: object, file: Path, **options: object) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: not readable YAML: {error}") from None
        try:
            result = workflows_load(document=document, actor=Actor.system("load_workflows"))
        except ValidationFailed as error:
            lines = "\n".join(f"{file}: {where}: {message}" for where, message in error.problems)
            raise CommandError(f"nothing loaded:\n{lines}") from None
        for outcome in ("created", "updated", "unchanged"):
            slugs = getattr(result, outcome)
            if slugs:
                self.stdout.write(f"{outcome}: {', '.join(slugs)}")
