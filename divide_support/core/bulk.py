"""Many new rows of one model in one INSERT statement.

Tortoise's bulk_create hands the rows to asyncpg's executemany, which runs the INSERT once per
row (one Execute each on the wire); on a request's hot path that is a round of work per row.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.models import Model


async def insert_all(objects: Sequence[Model], *, ignore_conflicts: bool = False) -> None:
    """INSERT ... VALUES (...), (...) for `objects` (new instances of one model, ids from the
    database), on the connection of the current transaction. With `ignore_conflicts`, rows
    that would break a unique constraint are left out (ON CONFLICT DO NOTHING), as with
    bulk_create(ignore_conflicts=True). The instances do not learn their ids."""
    if not objects:
        return
    model = type(objects[0])
    if any(type(obj) is not model for obj in objects):
        raise TypeError("insert_all takes instances of one model")
    db = model._meta.db
    executor = db.executor_class(model=model, db=db)
    names = executor.regular_columns  # the fields Tortoise itself inserts (no generated id)
    fields_map = model._meta.fields_map
    query = db.query_class.into(model._meta.basetable).columns(
        *(model._meta.fields_db_projection[name] for name in names))
    values: list[object] = []
    for obj in objects:
        start = len(values)
        values.extend(fields_map[name].to_db_value(getattr(obj, name), obj) for name in names)
        query = query.insert(*(executor.parameter(i) for i in range(start, len(values))))
    if ignore_conflicts:
        query = query.on_conflict().do_nothing()
    await db.execute_query(query.get_sql(), values)
