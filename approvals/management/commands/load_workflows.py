from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import add_user_argument, user_named
from approvals.workflows.loading import workflows_load
from approvals.workflows.stage_gate import StageForce
from audit.services import Actor
from core.errors import ValidationFailed


class Command(BaseCommand):
    help = "Create or update workflows, field policies, groups and retention rules from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--force-stage",
            action="store_true",
            help="move workflows to a later stage even though readiness checks fail (needs --reason and --user)",
        )
        parser.add_argument("--reason", metavar="TEXT", help="why the stages are forced (kept in the trail)")
        add_user_argument(parser, help="who forces the stages: the workflow's owner or an ops manager")

    def handle(self, *args: object, file: Path, **options: object) -> None:
        force = self._force(options)
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: not readable YAML: {error}") from None
        try:
            result = workflows_load(document=document, actor=Actor.system("load_workflows"), force=force)
        except ValidationFailed as error:
            lines = "\n".join(f"{file}: {where}: {message}" for where, message in error.problems)
            raise CommandError(f"nothing loaded:\n{lines}") from None
        for outcome in ("created", "updated", "unchanged"):
            slugs = getattr(result, outcome)
            if slugs:
                self.stdout.write(f"{outcome}: {', '.join(slugs)}")

    def _force(self, options: dict) -> StageForce | None:
        if not options["force_stage"]:
            if options["reason"] or options["user"]:
                raise CommandError("--reason and --user go with --force-stage")
            return None
        if not options["reason"] or not options["user"]:
            raise CommandError("--force-stage needs --reason TEXT and --user NAME")
        return StageForce(reason=str(options["reason"]), user=user_named(str(options["user"])))
