"""Writing many existing rows at once: one prepared UPDATE, sent with executemany.

Django's `bulk_update` builds a CASE expression per field and row, which costs more in Python than
the database spends on the update; this sends the same statement once per row instead, which the
PostgreSQL driver pipelines.
"""

from collections.abc import Sequence
from typing import Any, cast

from django.db import connection, models


def update_rows(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Save `fields` of every object in `objs` (all of one model), in the caller's transaction."""
    if not objs:
        return
    meta = objs[0]._meta
    chosen = [cast("models.Field[Any, Any]", meta.get_field(name)) for name in fields]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(field.column))} = %s" for field in chosen)
    key = quote(str(cast("models.Field[Any, Any]", meta.pk).column))
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {key} = %s"  # noqa: S608
    rows = [
        [*(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in chosen), obj.pk] for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
