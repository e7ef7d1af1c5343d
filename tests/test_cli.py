"""The command line as operators use it: the installed `divide-support` script, run from
another folder, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg

SCRIPT = Path(sys.executable).with_name("divide-support")





def _env(database_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_DATABASE_URL")}
    if database_url:
        env["DATABASE_URL"] = database_url
    env["LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run, [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=180,
    )


async def test_migrate_applies_once_and_then_reports_no_change(fresh_database, tmp_path):
    url, params = fresh_database
    first = await run_cli("migrate", env=_env(url), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "0001_initial" in first.stdout
    second = await run_cli("migrate", env=_env(url), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "変更なし" in second.stdout
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        await conn.close()
    assert {"session", "registration", "resident", "supporter", "audit_entry"} <= tables


async def test_two_migrations_at_once_both_succeed(fresh_database, tmp_path):
    url, _ = fresh_database
    results = await asyncio.gather(*(run_cli("migrate", env=_env(url), cwd=tmp_path)
                                     for _ in range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]


async def test_seed_is_idempotent_and_create_user_checks_its_input(fresh_database, tmp_path):
    url, params = fresh_database
    assert (await run_cli("migrate", env=_env(url), cwd=tmp_path)).returncode == 0
    for _ in range(2):
        seeded = await run_cli("seed", env=_env(url), cwd=tmp_path)
        assert seeded.returncode == 0, seeded.stderr
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        names = await conn.fetch("SELECT code, name FROM municipality ORDER BY code")
        course_counts = await conn.fetch(
            "SELECT municipality_id, count(*) FROM course GROUP BY municipality_id")
    finally:
        await conn.close()
    assert [(r["code"], r["name"]) for r in names] == [
        ("092142", "さくら市"), ("142034", "平塚市"), ("222127", "焼津市"), ("222259", "伊豆の国市")]
    assert len({r["count"] for r in course_counts}) == 1  # same catalogue everywhere, no duplicates

    ok = await run_cli("create-user", "--email", "Staff@Example.jp", "--role", "COORDINATOR",
                       "--municipality", "142034", "--password", "long-enough-pw",
                       env=_env(url), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "staff@example.jp" in ok.stdout
    again = await run_cli("create-user", "--email", "staff@example.jp", "--role", "ADMIN",
                          "--municipality", "142034", "--password", "long-enough-pw",
                          env=_env(url), cwd=tmp_path)
    assert again.returncode == 2
    assert "既に使われています" in again.stderr
    supporter = await run_cli("create-user", "--email", "s@example.jp", "--role", "SUPPORTER",
                              "--municipality", "142034", "--password", "long-enough-pw",
                              env=_env(url), cwd=tmp_path)
    assert supporter.returncode == 2 and "SUPPORTER_REQUIRED" in supporter.stderr
    unknown = await run_cli("create-user", "--email", "x@example.jp", "--role", "ADMIN",
                            "--municipality", "999999", "--password", "long-enough-pw",
                            env=_env(url), cwd=tmp_path)
    assert unknown.returncode == 2 and "999999" in unknown.stderr
    bad_role = await run_cli("create-user", "--email", "x@example.jp", "--role", "BOSS",
                             "--municipality", "142034", "--password", "long-enough-pw",
                             env=_env(url), cwd=tmp_path)
    assert bad_role.returncode == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def _start_serve(env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen:
    log = (cwd / f"serve-{port}.log").open("w")
    return subprocess.Popen([str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def _serve_and_stop(env: dict[str, str], cwd: Path) -> tuple[int, int, int]:
    port = _free_port()
    process = _start_serve(env, cwd, port)
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/healthz", timeout=120)
        ready = _wait_for(f"http://127.0.0.1:{port}/readyz")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            code = -9
    return health, ready, code


async def test_serve_answers_health_checks_and_stops_gracefully(fresh_database, tmp_path):
    url, _ = fresh_database
    assert (await run_cli("migrate", env=_env(url), cwd=tmp_path)).returncode == 0
    health, ready, code = await asyncio.to_thread(_serve_and_stop, _env(url), tmp_path)
    assert (health, ready, code) == (200, 200, 0)


async def test_embedded_mode_serves_and_shares_the_database_with_another_command(tmp_path):
    """No DATABASE_URL: `serve` starts the embedded PostgreSQL, migrates and seeds; a `seed`
    running at the same time joins the same server instead of fighting over it."""
    env = _env(None, DIVIDE_SUPPORT_DATA_DIR=str(tmp_path / "data"))
    port = _free_port()
    process = await asyncio.to_thread(_start_serve, env, tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz", 180) == 200
        seeded = await run_cli("seed", env=env, cwd=tmp_path)
        assert seeded.returncode == 0, seeded.stderr
        assert "municipalities=4" in seeded.stdout
        # the server still answers after the other command has left
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz") == 200
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
    assert process.returncode == 0


async def test_a_supporter_login_links_to_the_supporter_by_its_graphql_id(fresh_database, tmp_path):
    from divide_support.core.ids import to_global_id

    url, params = fresh_database
    assert (await run_cli("migrate", env=_env(url), cwd=tmp_path)).returncode == 0
    assert (await run_cli("seed", env=_env(url), cwd=tmp_path)).returncode == 0
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        supporter_id = await conn.fetchval(
            "INSERT INTO supporter (municipality_id, display_name, affiliation, skills, certified,"
            " active, created_at) SELECT id, '鈴木 一郎', 'NPO', '[]', true, true, now()"
            " FROM municipality WHERE code = '142034' RETURNING id")
        made = await run_cli("create-user", "--email", "suzuki@example.jp", "--role", "SUPPORTER",
                             "--municipality", "142034", "--password", "long-enough-pw",
                             "--supporter-id", to_global_id("Supporter", supporter_id),
                             env=_env(url), cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        linked = await conn.fetchval("SELECT supporter_id FROM app_user WHERE email = $1",
                                     "suzuki@example.jp")
    finally:
        await conn.close()
    assert linked == supporter_id


async def test_demo_for_an_unknown_municipality_is_a_clear_error(fresh_database, tmp_path):
    url, _ = fresh_database
    result = await run_cli("demo", "--municipality", "999999", env=_env(url), cwd=tmp_path)
    assert result.returncode == 2
    assert "999999" in result.stderr and "Traceback" not in result.stderr


_DUE_MESSAGE_SQL = """
WITH city AS (
    UPDATE municipality SET sms_quiet_from_minute = 0, sms_quiet_until_minute = 0,
                            sms_per_second = 0
    WHERE code = '142034' RETURNING id
), person AS (
    INSERT INTO resident (municipality_id, family_name, given_name, phone, contact_preference,
                          sms_consent, sms_opted_out, created_at, updated_at)
    SELECT id, '山田', '花子', '+819012345678', 'SMS', true, false, now(), now() FROM city
    RETURNING id, municipality_id
)
INSERT INTO message (municipality_id, resident_id, kind, idempotency_key, "to", body, segments,
                     encoding, send_after, status, attempts, retries, created_at, updated_at)
SELECT municipality_id, id, 'FOLLOW_UP', 'cli-test', '+819012345678', '【平塚市】テスト', 1,
       'UCS-2', now() - interval '1 minute', 'PENDING', 0, 0, now(), now() FROM person
"""


async def test_worker_once_sends_what_is_due(fresh_database, tmp_path):
    url, params = fresh_database
    assert (await run_cli("migrate", env=_env(url), cwd=tmp_path)).returncode == 0
    assert (await run_cli("seed", env=_env(url), cwd=tmp_path)).returncode == 0
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        await conn.execute(_DUE_MESSAGE_SQL)
        ran = await run_cli("worker", "--once", env=_env(url, SMS_BACKEND="console"), cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr
        assert "sent=1" in ran.stdout
        status = await conn.fetchval("SELECT status FROM message WHERE idempotency_key = 'cli-test'")
    finally:
        await conn.close()
    assert status == "SENT"


async def test_worker_refuses_an_incomplete_twilio_setup_clearly(fresh_database, tmp_path):
    url, _ = fresh_database
    ran = await run_cli("worker", env=_env(url, SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC1"),
                        cwd=tmp_path)
    assert ran.returncode == 2
    assert "TWILIO_AUTH_TOKEN" in ran.stderr and "Traceback" not in ran.stderr
    typo = await run_cli("worker", env=_env(url, SMS_BACKEND="twillio"), cwd=tmp_path)
    assert typo.returncode == 2
    assert "SMS_BACKEND" in typo.stderr and "Traceback" not in typo.stderr


async def test_worker_stops_gracefully_on_sigterm(fresh_database, tmp_path):
    url, _ = fresh_database
    assert (await run_cli("migrate", env=_env(url), cwd=tmp_path)).returncode == 0
    process = await asyncio.to_thread(
        subprocess.Popen, [str(SCRIPT), "worker"], env=_env(url), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = await asyncio.to_thread(process.stdout.readline)
        assert "worker" in first_line
        await asyncio.sleep(1.0)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(process.communicate, None, 30)
    assert process.returncode == 0, output
    assert "Traceback" not in output


async def test_import_survey_loads_a_file_and_refuses_a_broken_one(fresh_database, tmp_path):
    url, params = fresh_database
    assert (await run_cli("migrate", env=_env(url), cwd=tmp_path)).returncode == 0
    seeded = await run_cli("seed", env=_env(url), cwd=tmp_path)
    assert "surveys=2" in seeded.stdout
    good = tmp_path / "izunokuni.yaml"
    good.write_text("""
municipality: "222259"
key: izunokuni-2024-smartphone
title: 伊豆の国市 スマホ利用調査 2024
year: 2024
metric_groups:
  - key: smartphone
    exhaustive: true
    metrics: [{key: using, need: complement}, {key: not_using}]
bands:
  - {label: 65～74歳, min_age: 65, max_age: 74, respondents: 120,
     values: {smartphone.using: 70, smartphone.not_using: 30}}
  - {label: 75歳以上, min_age: 75, max_age: null, respondents: 90,
     values: {smartphone.using: 40, smartphone.not_using: 60}}
""", encoding="utf-8")
    loaded = await run_cli("import-survey", str(good), env=_env(url), cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert "伊豆の国市 スマホ利用調査 2024" in loaded.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(good.read_text(encoding="utf-8").replace("min_age: 75", "min_age: 70"),
                      encoding="utf-8")
    refused = await run_cli("import-survey", str(broken), env=_env(url), cwd=tmp_path)
    assert refused.returncode == 2
    assert "重なっています" in refused.stderr and "Traceback" not in refused.stderr
    missing = await run_cli("import-survey", str(tmp_path / "nope.yaml"), env=_env(url), cwd=tmp_path)
    assert missing.returncode == 2 and "読めません" in missing.stderr
    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        count = await conn.fetchval("SELECT count(*) FROM survey WHERE key = 'izunokuni-2024-smartphone'")
        bands = await conn.fetchval("SELECT count(*) FROM survey_band b JOIN survey s ON s.id = b.survey_id"
                                    " WHERE s.key = 'izunokuni-2024-smartphone'")
    finally:
        await conn.close()
    assert (count, bands) == (1, 2)
