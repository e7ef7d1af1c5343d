"""The graphql-http audit suite (https://github.com/graphql/graphql-http, serverAudits) against
the app served by a real uvicorn server: GraphQL over HTTP done right, warnings included.

Needs node and npm (and the npm registry, once per test session); skipped with the reason
otherwise.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from node_tools import npm_folder

from divide_support.app import create_app
from divide_support.core.database import ConnectionParams

NPM_PACKAGES = ["graphql-http@1", "graphql@16"]
AUDIT_TIMEOUT = 120

RUNNER = """\
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });
const out = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    try {
      entry.httpStatus = result.response.status;
      entry.contentType = result.response.headers.get('content-type');
      entry.body = (await result.response.text()).slice(0, 500);
    } catch (error) {
      entry.body = `(body unavailable: ${error})`;
    }
  }
  out.push(entry);
}
process.stdout.write(JSON.stringify(out));
"""


@pytest.fixture(scope="session")
def audit_runner(tmp_path_factory) -> tuple[str, Path]:
    """A temp folder with graphql-http and graphql installed and the runner script."""
    return npm_folder(tmp_path_factory, "graphql-http-audit", NPM_PACKAGES, "audit.mjs", RUNNER,
                      "for the graphql-http audit suite")


class ServerThread:
    """uvicorn in a thread with its own event loop; the app's lifespan initialises Tortoise
    (RegisterTortoise) in that loop, as `divide-support serve` does."""

    def __init__(self, connection: ConnectionParams) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))  # a free port, held until the server takes it
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(create_app(connection, init_orm=True), log_level="warning",
                                lifespan="on", loop="asyncio", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="uvicorn-audit", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()


@pytest.fixture
async def live_server(database: ConnectionParams, service_database: ConnectionParams):
    server = ServerThread(service_database)  # as the service role, as `serve` runs
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def _run_audits(node: str, runner: Path, url: str) -> list[dict]:
    done = subprocess.run([node, str(runner), url], cwd=runner.parent, capture_output=True,
                          text=True, timeout=AUDIT_TIMEOUT, check=False)
    assert done.returncode == 0, f"the audit runner failed:\n{done.stderr[-2000:]}"
    return json.loads(done.stdout)


async def test_live_server_answers(live_server):
    """The served app is the real one: health, readiness through its own ORM context, GraphQL."""
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live_server.port}") as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        response = await client.post("/graphql", json={"query": "{ __typename }"},
                                     headers={"Accept": "application/graphql-response+json"})
        assert response.json() == {"data": {"__typename": "Query"}}
        unauthenticated = await client.post("/graphql", json={"query": "{ sessions { totalCount } }"})
        assert unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_graphql_http_server_audits_all_pass(audit_runner, live_server):
    node, runner = audit_runner
    results = await asyncio.to_thread(_run_audits, node, runner, live_server.url)
    assert len(results) > 20, results
    failing = [r for r in results if r["status"] != "ok"]
    report = "\n".join(
        f"- [{r['status']}] {r['id']} {r['name']}: {r.get('reason')} "
        f"(HTTP {r.get('httpStatus')}, {r.get('contentType')}, body {r.get('body')!r})"
        for r in failing)
    assert not failing, f"{len(failing)} of {len(results)} graphql-http audits did not pass:\n{report}"


async def test_readyz_is_503_when_the_database_is_unreachable(database):
    """A replica whose database is gone must leave the load balancer's pool (and say nothing
    about why beyond 'unreachable')."""
    import httpx

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    unreachable = ConnectionParams(host="127.0.0.1", port=dead_port, user=database.user,
                                   password=database.password, database=database.database)
    server = ServerThread(unreachable)
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            for marker in ("Traceback", "Connection refused", str(dead_port)):
                assert marker not in ready.text
    finally:
        await asyncio.to_thread(server.stop)
