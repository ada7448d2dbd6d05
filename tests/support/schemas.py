"""A fresh PostgreSQL schema per test (or per module), selected through the URL's search_path."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, make_url, text


@contextlib.contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """Create a schema, yield a URL whose search_path selects it, drop it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(database_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()


def app_id() -> str:
    """A unique Sluice app id: its own topics and consumer group."""
    return f"t{uuid.uuid4().hex[:10]}"
