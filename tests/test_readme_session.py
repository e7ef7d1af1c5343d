"""The README as a newcomer uses it: its first GraphQL session, copied from README.md and run
with bash (curl, python3) against a real `divide-support serve`, twice. The second run finds
what the first made instead of failing on DUPLICATE; neither leaves a refused mutation. And
every example operation in graphql/examples/ says which role it needs, in the words of the
role matrix."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from pathlib import Path

import asyncpg
from graphql import OperationDefinitionNode, parse
from test_cli import _env, _free_port, _start_serve, _wait_for, run_cli
from test_role_matrix import MUTATION_MATRIX, QUERY_MATRIX

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _snippet() -> str:
    """The shell block of the section "A first GraphQL session"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A first GraphQL session", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    return block


def _create_user_args() -> list[str]:
    """The `create-user` line of the README that the snippet's login refers to."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"divide-support create-user (--email .*?)\n```", text, flags=re.S)
    assert match, "README: the create-user example is gone"
    line = match.group(1).replace("\\\n", " ")
    return [part.strip("'") for part in line.split()]


def _run_snippet(script: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


async def test_the_first_graphql_session_runs_twice_without_errors(fresh_database, tmp_path):
    url, params = fresh_database
    env = _env(url)
    for args in (["migrate"], ["seed"], ["create-user", *_create_user_args()]):
        done = await run_cli(*args, env=env, cwd=tmp_path)
        assert done.returncode == 0, (args, done.stderr)
    port = _free_port()
    snippet = _snippet()
    assert snippet.count("http://127.0.0.1:8000/graphql") == 1
    script = tmp_path / "first-session.sh"
    script.write_text(snippet.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}"),
                      encoding="utf-8")
    server = _start_serve(env, tmp_path, port)
    try:
        await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz")
        runs = [await asyncio.to_thread(_run_snippet, script, tmp_path) for _ in range(2)]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    seats = []
    for run in runs:
        assert run.returncode == 0 and run.stderr == "", run
        answer = json.loads(run.stdout)  # the seat, as the last line of the snippet shows it
        assert "errors" not in answer, answer
        seat = (answer.get("data") or {}).get("node")
        assert seat and seat["status"] == "CONFIRMED" and seat["session"]["seatsLeft"] == 11, seat
        seats.append(seat["id"])
    assert seats[0] == seats[1]

    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        counts = {table: await conn.fetchval(f"SELECT count(*) FROM {table}")
                  for table in ("venue", "session", "resident", "registration")}
        refused = await conn.fetch(
            "SELECT details FROM audit_entry WHERE action = 'mutation.refused'")
    finally:
        await conn.close()
    assert counts == {"venue": 1, "session": 4, "resident": 1, "registration": 1}
    assert refused == []


# --- graphql/examples/ ---------------------------------------------------------------------

def _roles_named(comment: str) -> set[str]:
    """Roles a "# Role: ..." comment line names."""
    return set(re.findall(r"\b(ADMIN|COORDINATOR|SUPPORTER|PLANNER)\b", comment))


def _operations(path: Path) -> list[tuple[OperationDefinitionNode, list[str]]]:
    """Each operation with the comment lines right above it."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for definition in parse(text).definitions:
        assert isinstance(definition, OperationDefinitionNode)
        line = definition.loc.source.get_location(definition.loc.start).line - 1
        comments = []
        while line > 0 and lines[line - 1].startswith("#"):
            line -= 1
            comments.insert(0, lines[line])
        found.append((definition, comments))
    return found


def test_every_example_operation_says_which_role_it_needs():
    """A "# Role: ..." line above each operation naming who may run it: only roles the matrix
    lets run every top-level field of it (fields inside may narrow it further, e.g. invite
    links for staff only), or "anyone" for what needs no login."""
    examples = sorted((ROOT / "graphql" / "examples").glob("*.graphql"))
    assert examples
    wrong = []
    for path in examples:
        for operation, comments in _operations(path):
            name = operation.name.value if operation.name else "(anonymous)"
            role_lines = " ".join(c for c in comments if c.lower().startswith("# role:"))
            matrix = MUTATION_MATRIX if operation.operation.value == "mutation" else QUERY_MATRIX
            fields = [s.name.value for s in operation.selection_set.selections]
            allowed = set.intersection(*(set(matrix[f]) for f in fields))
            named = _roles_named(role_lines)
            if not role_lines:
                wrong.append((path.name, name, "no '# Role:' comment above it"))
            elif "anonymous" in allowed:
                if "anyone" not in role_lines:
                    wrong.append((path.name, name, "needs no login: say 'anyone'"))
            elif not named or not named <= allowed:
                wrong.append((path.name, name, f"names {sorted(named)}, the role matrix allows "
                                               f"{sorted(allowed)}"))
    assert wrong == []
