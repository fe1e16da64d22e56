"""Inserting many new rows fast. On PostgreSQL they go in through COPY, several times quicker than a
multi-row INSERT for large batches; elsewhere through `bulk_create`."""

import json
from collections.abc import Sequence

from django.db import connection, models
from django.db.models.fields import AutoFieldMixin

from core.roundtrip import Statement, run_together


def bulk_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert new `objs`, in order, inside the caller's transaction, and set their primary keys.

    For auto-increment keys on PostgreSQL, the keys are drawn from the table's sequence in
    ascending order before the rows are written, so ids follow the order of `objs`. Field values
    are taken as the instances hold them (defaults are set when an instance is built); `pre_save`
    hooks such as `auto_now` are not run.
    """
    if not objs:
        return
    meta = model._meta
    pk = meta.pk
    if connection.vendor != "postgresql" or len(objs) < 2 or not isinstance(pk, AutoFieldMixin):
        model._default_manager.bulk_create(objs, batch_size=1000)
        return
    fields = [field for field in meta.concrete_fields if field is not pk]
    plain = [field for field in fields if not isinstance(field, models.JSONField)]
    documents = [field for field in fields if isinstance(field, models.JSONField)]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in [pk, *plain, *documents])
    table = connection.ops.quote_name(meta.db_table)
    plain_names = [field.attname for field in plain]
    document_specs = [(field.attname, field.encoder, field.null) for field in documents]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, pk.column, len(objs)],
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for obj, new_id in zip(objs, ids, strict=True):
                values = obj.__dict__
                row = [new_id, *(values[name] for name in plain_names)]
                for name, encoder, nullable in document_specs:
                    value = values[name]
                    row.append(None if value is None and nullable else json.dumps(value, cls=encoder))
                copy.write_row(row)
    for obj, new_id in zip(objs, ids, strict=True):
        obj.pk = new_id
        obj._state.adding = False
        obj._state.db = connection.alias


_INSERT_SQL: dict[type[models.Model], tuple[str, list[models.Field]]] = {}


def insert_one(obj: models.Model) -> None:
    """Insert one new instance whose primary key is set on it (a UUID, say) in a single statement.

    What `save(force_insert=True)` does, defaults and `auto_now` included, without compiling a
    query each time: for a row written once per apply on the hot path.
    """
    run_together([insert_one_statement(obj)])
    inserted(obj)


def insert_one_statement(obj: models.Model) -> Statement:
    """`insert_one` as a statement to send along with others (see `core.roundtrip`); once it has
    run, call `inserted(obj)`."""
    model = type(obj)
    if model not in _INSERT_SQL:
        fields = list(model._meta.concrete_fields)
        quote = connection.ops.quote_name
        columns = ", ".join(quote(str(field.column)) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        # Built only from the model's own table and column names; every value is a parameter.
        _INSERT_SQL[model] = (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({placeholders})", fields)  # noqa: S608
    sql, fields = _INSERT_SQL[model]
    params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    return Statement(sql, params, prepared=True)


def inserted(obj: models.Model) -> None:
    """Mark `obj` as a saved row of the default database."""
    obj._state.adding = False
    obj._state.db = connection.alias
