from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import user_named
from approvals.workflows.loading import workflows_load
from approvals.workflows.stage_gate import StageForce
from audit.services import Actor
from core.errors import ValidationFailed


class Command(BaseCommand):
    help = "Create or update workflows, field policies, groups and retention rules from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--user",
            dest="user",
            metavar="NAME",
            help="who loads the file: a change to a retention rule is proposed in their name and waits for "
            "the rules' other owner; with --force-stage, who forces the stages (the owner or an ops manager)",
        )
        parser.add_argument(
            "--countersigned-by",
            dest="countersigned_by",
            metavar="NAME",
            help="the other owner of the retention rules, who already countersigned the file's retention "
            "changes: they take effect at once",
        )
        parser.add_argument(
            "--force-stage",
            action="store_true",
            help="move workflows to a later stage even though readiness checks fail (needs --reason and --user)",
        )
        parser.add_argument("--reason", metavar="TEXT", help="why the stages are forced (kept in the trail)")

    def handle(self, *args: object, file: Path, **options: Any) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: not readable YAML: {error}") from None
        user = user_named(str(options["user"])) if options.get("user") else None
        countersigned_by = _countersigner(options.get("countersigned_by"))
        force = _force(options, user)
        actor = Actor.user(user) if user is not None else Actor.system("load_workflows")
        try:
            result = workflows_load(
                document=document, actor=actor, user=user, countersigned_by=countersigned_by, force=force
            )
        except ValidationFailed as error:
            lines = "\n".join(f"{file}: {where}: {message}" for where, message in error.problems)
            raise CommandError(f"nothing loaded:\n{lines}") from None
        for outcome in ("created", "updated", "unchanged"):
            slugs = getattr(result, outcome)
            if slugs:
                self.stdout.write(f"{outcome}: {', '.join(slugs)}")
        for line in result.retention_waiting:
            self.stdout.write(f"retention change waiting for its second owner: {line}")


def _countersigner(name: str | None) -> Any:
    if not name:
        return None
    try:
        return user_named(name)
    except CommandError:
        raise CommandError(f"--countersigned-by {name}: no active user of that name; nothing loaded") from None


def _force(options: dict, user: Any) -> StageForce | None:
    if not options["force_stage"]:
        if options["reason"]:
            raise CommandError("--reason goes with --force-stage")
        return None
    if not options["reason"] or user is None:
        raise CommandError("--force-stage needs --reason TEXT and --user NAME")
    return StageForce(reason=str(options["reason"]), user=user)
