from django.db import migrations

from audit.triggers import install_append_only_triggers, remove_append_only_triggers


def install(apps, schema_editor):  # type: ignore[no-untyped-def]
    install_append_only_triggers(schema_editor.connection)


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    remove_append_only_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(install, remove)]
