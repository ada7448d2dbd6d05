"""The test session's PostgreSQL, found or started in this order:

1. DATABASE_URL;
2. the local server at 127.0.0.1:5432, database `test`;
3. a throwaway cluster from local PostgreSQL binaries (initdb/pg_ctl), in a temporary folder;
4. testcontainers' PostgreSQL where a Docker engine runs;
else the session fails with a message naming what is missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from streams.devbroker import free_port

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/test"


class NoDatabase(RuntimeError):
    pass


def reachable(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@contextmanager
def _throwaway_cluster() -> Iterator[str]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise NoDatabase("no initdb/pg_ctl found")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise NoDatabase("running as root and no 'postgres' user to run initdb") from None
        run_as = ["runuser", "-u", "postgres", "--"]
    folder = tempfile.mkdtemp(prefix="sluice-pg-")
    os.chmod(folder, 0o777)
    data = os.path.join(folder, "data")
    port = free_port()
    subprocess.run(
        [*run_as, initdb, "-D", data, "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *run_as,
            pg_ctl,
            "-D",
            data,
            "-l",
            os.path.join(folder, "log"),
            "-w",
            "start",
            "-o",
            f"-p {port} -k {folder} -h 127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def session_database() -> Iterator[tuple[str, str]]:
    """Yields (SQLAlchemy URL, where it came from)."""
    explicit = os.environ.get("DATABASE_URL")
    if explicit:
        if not reachable(explicit):
            raise NoDatabase("DATABASE_URL is set but the database does not answer")
        yield explicit, "DATABASE_URL"
        return
    if reachable(LOCAL_URL):
        yield LOCAL_URL, "local server"
        return
    tried = ["DATABASE_URL (unset)", f"{LOCAL_URL} (no answer)"]
    try:
        with _throwaway_cluster() as url:
            yield url, "throwaway cluster"
            return
    except (NoDatabase, subprocess.CalledProcessError) as exc:
        tried.append(f"local PostgreSQL binaries ({exc})")
    try:
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16") as container:
            yield container.get_connection_url(), "testcontainers PostgreSQL"
            return
    except Exception as exc:  # DockerException when no engine runs
        tried.append(f"testcontainers ({type(exc).__name__})")
    raise NoDatabase("no PostgreSQL for the tests; tried: " + "; ".join(tried))
