"""uvicorn in its own process, wrk as the load generator, pg_stat_statements as the counter.

wrk (Debian package wrk) runs a Lua script that builds each request (a body per request
where the scenario needs one), counts answers that are not 200 or carry GraphQL errors, and
prints its figures as one JSON line at the end: requests, seconds, p50/p95/p99 latency."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from benchlib.pg import free_port

SCRIPTS = Path(__file__).resolve().parent.parent
MARK = "BENCH-JSON "

LUA = r"""
local bodies = %(bodies)s
local path, method, headers = %(path)q, %(method)q, {}
%(headers)s
local count = #bodies
local threads = {}
local errors, n, offset, step = 0, 0, 0, 1

function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

function init(args)
  offset = tonumber(wrk.thread:get("offset")) or 0
  step = %(threads)d
end

function request()
  local body = nil
  if count > 0 then
    local i = (offset + n * step) %% count + 1
    body = bodies[i]
  end
  n = n + 1
  return wrk.format(method, path, headers, body)
end

function response(status, hdrs, body)
  if status ~= 200 or (%(check)s and not string.find(body, %(ok)q, 1, true)) then
    errors = errors + 1
    wrk.thread:set("errors", errors)
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do failed = failed + (tonumber(t:get("errors")) or 0) end
  io.write(string.format('%(mark)s{"requests":%%d,"seconds":%%.6f,"p50_ms":%%.3f,"p95_ms":%%.3f,' ..
    '"p99_ms":%%.3f,"errors":%%d,"socket_errors":%%d}\n', summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout +
    summary.errors.status))
end
"""


def lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def wrk_script(path: str, method: str, headers: dict[str, str], bodies: list[str], threads: int,
               ok: str | None) -> str:
    header_lines = "\n".join(f"headers[ {lua_string(k)} ] = {lua_string(v)}" for k, v in headers.items())
    return (LUA.replace("%(bodies)s", "{" + ",".join(lua_string(b) for b in bodies) + "}")
            .replace("%(path)q", lua_string(path)).replace("%(method)q", lua_string(method))
            .replace("%(headers)s", header_lines).replace("%(threads)d", str(threads))
            .replace("%(check)s", "true" if ok else "false").replace("%(ok)q", lua_string(ok or ""))
            .replace("%(mark)s", MARK).replace("%%", "%"))


def wrk_program() -> str:
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    return found


def run_wrk(url: str, *, path: str = "/graphql", method: str = "POST", headers: dict[str, str],
            bodies: list[str], seconds: float, connections: int, threads: int = 1,
            ok: str | None = None) -> dict[str, Any]:
    """One wrk run; `ok` is a string every good answer contains."""
    script = wrk_script(path, method, headers, bodies, threads, ok)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        done = subprocess.run([wrk_program(), "-t", str(threads), "-c", str(max(connections, threads)),
                               "-d", f"{max(1, round(seconds))}s", "--timeout", "30s", "-s", f.name,
                               url.rstrip("/") + path], capture_output=True, text=True, check=False,
                              timeout=seconds + 120)
    finally:
        os.unlink(f.name)
    line = next((x for x in done.stdout.splitlines() if x.startswith(MARK)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-800:]} {done.stdout[-800:]}")
    figures = json.loads(line[len(MARK):])
    figures["rps"] = figures["requests"] / figures["seconds"] if figures["seconds"] else 0.0
    return figures


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_uvicorn(app: str, env: dict[str, str], workers: int, log_dir: Path, name: str) -> Server:
    """`app` is a factory (module:function); uvicorn's own defaults otherwise (uvloop and
    httptools when installed), no access log, on 127.0.0.1."""
    port = free_port()
    log = log_dir / f"{name}.log"
    command = [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [str(SCRIPTS), *filter(None, [os.environ.get("PYTHONPATH")])])}
    process = subprocess.Popen(command, env=full_env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    server = Server(process, url, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return server
        except urllib.error.HTTPError:
            return server  # it answers (the baseline has no /healthz)
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")


def post(url: str, body: str, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.read()


def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status, answer.read()


class StatementCounter:
    """Statements PostgreSQL ran in one database between reset() and count(), read from
    pg_stat_statements in another database (so counting adds nothing)."""

    def __init__(self, conn: asyncpg.Connection, database: str) -> None:
        self.conn = conn
        self.database = database

    async def reset(self) -> None:
        await self.conn.execute("SELECT pg_stat_statements_reset()")

    async def count(self, *, toplevel: bool = False) -> int:
        """All statements; with `toplevel`, only those the application sent (not the ones
        PostgreSQL runs inside them, such as its foreign-key checks)."""
        return int(await self.conn.fetchval(
            "SELECT COALESCE(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = $1 AND (s.toplevel OR NOT $2)", self.database, toplevel))

    async def top(self, limit: int = 12) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            "SELECT s.calls, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 120) AS query FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 ORDER BY s.calls DESC LIMIT $2",
            self.database, limit)
        return [dict(r) for r in rows]
