"""A throw-away PostgreSQL that speaks TLS, for proving that DATABASE_URL's sslmode reaches the
driver: what managed PostgreSQL (RDS, Cloud SQL, Azure) asks for.

Built from Debian's PostgreSQL binaries (pgserver's have no SSL), listening on 127.0.0.1
with a certificate for `localhost` only, signed by a CA of its own (trustme): so
`sslmode=verify-full&sslrootcert=ca.pem` passes for `localhost` and fails for `127.0.0.1`.
TCP logins need a password (scram-sha-256); `ssl` can be switched off on a running server.

Tests use it with ``from tls_postgres import tls_postgres_server  # noqa: F401`` and a
parameter named ``tls_server``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "tls-" + secrets.token_hex(8)


@dataclass
class TlsPostgres:
    port: int
    ca_file: Path
    socket_dir: Path
    pgdata: Path
    system_user: str | None
    bindir: Path

    def url(self, host: str = "localhost", database: str = "postgres", password: str = PASSWORD,
            **query: str) -> str:
        params = "&".join(f"{key}={value}" for key, value in query.items())
        return f"postgresql://postgres:{password}@{host}:{self.port}/{database}" + (
            f"?{params}" if params else "")

    def psql(self, sql: str) -> str:
        return subprocess.run(
            [str(self.bindir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
             "-U", "postgres", "-d", "postgres", "-Atc", sql],
            user=self.system_user, check=True, capture_output=True, text=True, timeout=60).stdout

    def set_ssl(self, on: bool) -> None:
        self.psql(f"ALTER SYSTEM SET ssl = {'on' if on else 'off'}")
        self.psql("SELECT pg_reload_conf()")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bindir() -> Path | None:
    """A PostgreSQL built with SSL: Debian's (the development and CI machines have it; pgserver's
    own build has no SSL)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


@pytest.fixture(name="tls_server", scope="module")
def tls_postgres_server() -> Iterator[TlsPostgres]:
    trustme = pytest.importorskip("trustme")
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries with SSL (Debian's postgresql package)")

    root = Path(tempfile.mkdtemp(prefix="ds-tls-"))
    root.chmod(0o755)
    pgdata, socket_dir = root / "pgdata", root / "sock"
    socket_dir.mkdir()
    socket_dir.chmod(0o777)
    system_user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: run it as pgserver's own user
        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        system_user = "pgserver"
        ensure_user_exists(system_user)
        ensure_prefix_permissions(root)
    pgdata.mkdir(mode=0o700)
    password_file = root / "pw"
    password_file.write_text(PASSWORD)
    password_file.chmod(0o644)

    ca = trustme.CA()
    ca_file = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_cert = ca.issue_cert("localhost")  # not 127.0.0.1: verify-full must tell them apart
    cert_dir = root / "cert"
    cert_dir.mkdir(mode=0o700)
    server_cert.cert_chain_pems[0].write_to_path(str(cert_dir / "server.crt"))
    server_cert.private_key_pem.write_to_path(str(cert_dir / "server.key"))
    (cert_dir / "server.key").chmod(0o600)
    if system_user:
        import pwd

        entry = pwd.getpwnam(system_user)
        for path in (pgdata, cert_dir, cert_dir / "server.crt", cert_dir / "server.key"):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def run(*command: str) -> None:
        subprocess.run([str(bindir / command[0]), *command[1:]], user=system_user, check=True,
                       capture_output=True, timeout=120)

    run("initdb", "-D", str(pgdata), "--auth-local=trust", "--auth-host=scram-sha-256",
        "--encoding=utf8", "-U", "postgres", f"--pwfile={password_file}")
    # in postgresql.conf, not on the command line: ALTER SYSTEM can then switch ssl off
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"\nssl = on\nssl_cert_file = '{cert_dir / 'server.crt'}'\n"
                   f"ssl_key_file = '{cert_dir / 'server.key'}'\n")
    port = _free_port()
    run("pg_ctl", "-D", str(pgdata), "-w", "-l", str(pgdata / "log"),
        "-o", f"-h 127.0.0.1 -p {port} -k {socket_dir}", "start")
    server = TlsPostgres(port, ca_file, socket_dir, pgdata, system_user, bindir)
    try:
        yield server
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "immediate", "stop"],
                       user=system_user, capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)
