"""A throw-away PostgreSQL cluster that preloads pg_stat_statements, so the benchmark can count
every statement the server ran (asyncpg's connection resets included).

Debian's server binaries (/usr/lib/postgresql/N/bin, package postgresql-N, which ships the
extension) run initdb and pg_ctl; as root the cluster belongs to the `postgres` user, because
PostgreSQL refuses to run as root. pgserver's bundled binaries do not ship the extension."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def server_bin() -> Path | None:
    """The newest Debian PostgreSQL whose contrib has pg_stat_statements, or None."""
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                         reverse=True):
        major = bindir.split("/")[-2]
        if (Path(bindir) / "initdb").exists() and glob.glob(
                f"/usr/share/postgresql/{major}/extension/pg_stat_statements.control"):
            return Path(bindir)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    bindir: Path
    datadir: Path
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        full = [*(["runuser", "-u", self.run_as, "--"] if self.run_as else []), *command]
        done = subprocess.run(full, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stderr.strip()[-1500:]}")

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w",
                      "stop")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster(settings: dict[str, str] | None = None) -> Cluster:
    """initdb + pg_ctl start on a free port of 127.0.0.1 (trust authentication, local only)."""
    bindir = server_bin()
    if bindir is None:
        raise RuntimeError("no /usr/lib/postgresql/N/bin with pg_stat_statements: install postgresql "
                           "(apt-get install postgresql), or pass --database-url of a server that "
                           "preloads pg_stat_statements")
    run_as = "postgres" if os.geteuid() == 0 else None
    top = Path(tempfile.mkdtemp(prefix="ds-bench-pg-"))
    datadir = top / "data"
    if run_as:
        shutil.chown(top, run_as)
    cluster = Cluster(bindir, datadir, free_port(), run_as)
    cluster._run(str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
    options = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all",
               "pg_stat_statements.max": "10000", "listen_addresses": "127.0.0.1",
               "port": str(cluster.port), "unix_socket_directories": str(top), "max_connections": "300",
               "shared_buffers": "256MB"} | (settings or {})
    with (datadir / "postgresql.auto.conf").open("a") as conf:
        for key, value in options.items():
            conf.write(f"{key} = '{value}'\n")
    cluster._run(str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(top / "server.log"), "-w",
                 "-t", "60", "start")
    return cluster
