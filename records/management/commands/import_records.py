from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from core.errors import ValidationFailed
from records.services.imports import records_import_csv


class Command(BaseCommand):
    help = "Load new records into the built-in store from a CSV file (header: record_id, then field names)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("record_type")
        parser.add_argument("file", type=Path)

    def handle(self, *args: object, record_type: str, file: Path, **options: object) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            with file.open(newline="", encoding="utf-8") as handle:
                result = records_import_csv(
                    record_type=record_type, lines=handle, source=str(file), actor=Actor.system("import_records")
                )
        except UnicodeDecodeError as error:
            raise CommandError(f"{file}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        except ValidationFailed as error:
            lines = [f"{file}: {field}: {message}" for field, message in error.problems]
            if error.extra.get("total_problems", 0) > len(error.problems):
                lines.append(f"{file}: ... {error.extra['total_problems']} problems in all")
            raise CommandError("nothing imported:\n" + "\n".join(lines)) from None
        self.stdout.write(f"Imported {result.created} {record_type} record(s) from {file}.")
