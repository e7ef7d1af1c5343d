"""The PostgreSQL client programs (pg_dump, pg_restore) that match the server under test:
the embedded pgserver ships its own, a system server has Debian's /usr/lib/postgresql/N/bin."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import asyncpg

from divide_support.core.database import ConnectionParams


async def server_major_version(params: ConnectionParams) -> int:
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


def pg_program(name: str, server_major: int) -> Path:
    """pg_dump or pg_restore of exactly the server's major version."""
    candidates: list[Path] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR on CI machines
        from pgserver._commands import POSTGRES_BIN_PATH
    candidates.append(Path(POSTGRES_BIN_PATH) / name)
    candidates.append(Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"))
    if found := shutil.which(name):
        candidates.append(Path(found))
    for candidate in candidates:
        if not candidate.exists():
            continue
        version = subprocess.run([str(candidate), "--version"], capture_output=True, text=True,
                                 check=False).stdout
        match = re.search(r"\) (\d+)", version)
        if match and int(match.group(1)) == server_major:
            return candidate
    raise RuntimeError(f"no {name} of PostgreSQL {server_major} on this machine "
                       f"(install postgresql-client-{server_major})")


def libpq_args(params: ConnectionParams) -> tuple[list[str], dict[str, str]]:
    """Connection options for the client programs; the password goes by environment."""
    env = {**os.environ}
    if params.password:
        env["PGPASSWORD"] = params.password
    return ["-h", params.host, "-p", str(params.port), "-U", params.user], env


async def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True,
                                   text=True, timeout=300, check=False)


async def dump_text(params: ConnectionParams) -> str:
    """The whole database as SQL text (data and schema), as pg_dump writes it."""
    program = pg_program("pg_dump", await server_major_version(params))
    args, env = libpq_args(params)
    done = await run([str(program), *args, "--no-owner", "--no-privileges", params.database], env)
    if done.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {done.stderr[:500]}")
    return done.stdout
