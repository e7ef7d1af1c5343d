"""The PostgreSQL client programs (pg_dump, pg_restore) that match the server under test:
the embedded pgserver ships its own, a system server has them under /usr/lib/postgresql."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import asyncpg

from divide_support.core.database import ConnectionParams


async def server_major_version(params: ConnectionParams) -> int:
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


def _candidates(name: str, major: int) -> list[Path]:
    found = [Path(f"/usr/lib/postgresql/{major}/bin/{name}")]
    try:
        import pgserver

        found.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)
    except ImportError:
        pass
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    return found


async def _version_of(program: Path) -> int | None:
    process = await asyncio.create_subprocess_exec(str(program), "--version",
                                                   stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    try:
        return int(out.decode().split()[-1].split(".")[0])
    except (ValueError, IndexError):
        return None


async def pg_program(name: str, params: ConnectionParams) -> Path:
    """pg_dump or pg_restore of the server's major version (a newer one can read an older
    server too, but we ask for the exact one first)."""
    major = await server_major_version(params)
    usable = [p for p in _candidates(name, major) if p.exists() and os.access(p, os.X_OK)]
    versions = [(await _version_of(p), p) for p in usable]
    for version, path in versions:
        if version == major:
            return path
    for version, path in versions:
        if version is not None and version > major:
            return path
    raise RuntimeError(f"no {name} for PostgreSQL {major} on this machine")


def libpq_env(params: ConnectionParams) -> dict[str, str]:
    env = {**os.environ, "PGHOST": params.host, "PGPORT": str(params.port),
           "PGUSER": params.user, "PGDATABASE": params.database}
    if params.password:
        env["PGPASSWORD"] = params.password
    return env


async def dump_text(params: ConnectionParams) -> str:
    """The whole database as SQL text (data and schema), as pg_dump writes it."""
    program = await pg_program("pg_dump", params)
    process = await asyncio.create_subprocess_exec(
        str(program), "--no-owner", "--no-privileges", env=libpq_env(params),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"pg_dump failed: {err.decode(errors='replace')[:500]}")
    return out.decode("utf-8")
