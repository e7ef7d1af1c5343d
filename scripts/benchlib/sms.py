"""Scenario 6 of scripts/bench.py: the SMS dispatcher against a fast fake Twilio.

Creates a throw-away PostgreSQL database, applies the migrations, fills the outbox with
due PENDING messages and lets 1, 2, 4 ... real `divide-support worker` processes
(SMS_BACKEND=twilio, TWILIO_API_BASE pointing at the fake) send them. Per round it prints
the throughput and checks the outbox guarantees: no message reaches the provider twice
(duplicates) and none is dropped (losses). Exit code 1 if either happens.

    .venv/bin/python scripts/bench_sms.py --messages 2000
    .venv/bin/python scripts/bench_sms.py --messages 10000 --workers 1,2,4
    .venv/bin/python scripts/bench_sms.py --database-url postgres://postgres@db:5432 --keep-db

Each round: the fake's counters are cleared, every message goes back to PENDING with its
send_after parked a day ahead, the workers start, and once every worker is up the messages
are made due at once (t0). The round ends when no message is PENDING or SENDING (or at
--timeout); then the workers get SIGTERM. Per round it prints:

- elapsed (t0 to the last message settled), messages per second, final status counts;
- duplicates: messages the fake received more than once (must be 0);
- losses: messages neither SENT in the outbox nor received by the fake (must be 0);
- phantoms (SENT, never received), unsettled (received, not SENT: e.g. UNKNOWN), unknown
  ids (POSTs naming no message), sid/to/body mismatches, look-ups, attempts > 1;
- CPU seconds of the workers, their PostgreSQL backends and the fake (Linux /proc), to
  see which side is the bottleneck, and WARNING / ERROR lines in the worker logs.

Knobs: --batch-size (SMS_BATCH_SIZE), --poll-seconds, --latency-ms (the fake's answer
delay), --sms-per-second (the municipality's pace; 0 = unlimited), --log-level (the
workers' LOG_LEVEL), --env KEY=VALUE (any other worker setting, e.g. DB_POOL_MAX=20).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp import web

from divide_support.core.database import parse_database_url
from divide_support.core.migrate import apply_migrations
from divide_support.messaging.segments import count_segments

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"
FROM_NUMBER = "+815012345678"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
READY_MARK = "SMS dispatcher"  # "SMS dispatcher <id> started (backend: twilio)", at INFO
BANNER = "divide-support worker:"  # printed on stdout before the ORM starts


# --- the fake Twilio (runs in its own process) -----------------------------------------------

class FakeTwilio:
    """Just enough of the Messages API: create (201 queued) and list by To."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.reset()

    def reset(self) -> None:
        self.posts = 0
        self.gets = 0
        self.rejected = 0
        self.first_post: float | None = None
        self.last_post: float | None = None
        # message_id (from the StatusCallback URL) -> [[sid, to, body], ...] one per POST
        self.received: dict[str, list[list[str]]] = {}
        self.by_to: dict[str, list[dict[str, Any]]] = {}
        self.cpu_at_reset = time.process_time()

    def _authorised(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        expected = aiohttp.BasicAuth(ACCOUNT_SID, AUTH_TOKEN).encode()
        return auth == expected and request.match_info["sid"] == ACCOUNT_SID

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return web.json_response({"code": code, "message": message, "more_info": "", "status": status},
                                 status=status)

    async def create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.rejected += 1
            return self._error(401, 20003, "Authenticate")
        form = await request.post()
        to, body = str(form.get("To", "")), str(form.get("Body", ""))
        callback = str(form.get("StatusCallback", ""))
        if not to or not body or not (form.get("From") or form.get("MessagingServiceSid")):
            self.rejected += 1
            return self._error(400, 21604, "A 'To' phone number, 'From' and 'Body' are required.")
        message_id = parse_qs(urlsplit(callback).query).get("message_id", [f"body:{body}"])[0]
        if self.latency:
            await asyncio.sleep(self.latency)
        now = time.time()
        self.posts += 1
        self.first_post = self.first_post or now
        self.last_post = now
        sid = "SM" + uuid.uuid4().hex
        created = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        record = {
            "sid": sid, "account_sid": ACCOUNT_SID, "status": "queued", "to": to,
            "from": str(form.get("From") or ""), "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": body, "num_segments": "1", "num_media": "0", "direction": "outbound-api",
            "api_version": "2010-04-01", "error_code": None, "error_message": None, "price": None,
            "price_unit": "USD", "date_created": created, "date_updated": created, "date_sent": None,
            "uri": f"{MESSAGES_PATH[:-5]}/{sid}.json", "subresource_uris": {},
        }
        self.received.setdefault(message_id, []).append([sid, to, body])
        self.by_to.setdefault(to, []).append(record)
        return web.json_response(record, status=201)

    async def list(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            self.rejected += 1
            return self._error(401, 20003, "Authenticate")
        self.gets += 1
        to = request.query.get("To")
        size = int(request.query.get("PageSize", "50"))
        if to:
            records = list(reversed(self.by_to.get(to, [])))
        else:
            records = [r for rs in self.by_to.values() for r in rs]
        return web.json_response({
            "messages": records[:size], "page": 0, "page_size": size, "start": 0,
            "end": max(0, min(size, len(records)) - 1), "uri": MESSAGES_PATH,
            "first_page_uri": MESSAGES_PATH, "next_page_uri": None, "previous_page_uri": None,
        })

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "posts": self.posts, "gets": self.gets, "rejected": self.rejected,
            "first_post": self.first_post, "last_post": self.last_post,
            "cpu_seconds": time.process_time() - self.cpu_at_reset, "received": self.received,
        })

    async def do_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


async def _serve_fake(conn: Any, latency: float) -> None:
    fake = FakeTwilio(latency)
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", fake.create)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", fake.list)
    app.router.add_get("/_bench/stats", fake.stats)
    app.router.add_post("/_bench/reset", fake.do_reset)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    conn.send(runner.addresses[0][1])
    conn.close()
    await asyncio.Event().wait()


def fake_twilio_main(conn: Any, latency: float) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    asyncio.run(_serve_fake(conn, latency))


def start_fake(latency: float) -> tuple[Any, int]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=fake_twilio_main, args=(child, latency), daemon=True,
                              name="fake-twilio")
    process.start()
    if not parent.poll(30):
        process.kill()
        raise RuntimeError("the fake Twilio did not start")
    return process, int(parent.recv())


# --- database ----------------------------------------------------------------------------------

def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(**parse_database_url(server_url).dsn_kwargs())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0")
    finally:
        await conn.close()


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(**parse_database_url(server_url).dsn_kwargs())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def phone_for(index: int) -> str:
    return f"+8190{10_000_000 + index:08d}"  # +81 90 xxxx xxxx, a Japanese mobile


async def fill(conn: asyncpg.Connection, messages: int, residents: int, per_second: float) -> None:
    now = datetime.now(UTC)
    municipality_id = await conn.fetchval(
        "INSERT INTO municipality (code, name, timezone, phone, follow_up_days, created_at, sms_per_second,"
        " sms_quiet_from_minute, sms_quiet_until_minute, retention_years, erasure_keeps_birth_year)"
        " VALUES ('999999', 'ベンチ市', 'Asia/Tokyo', '+81312345678', 14, $1, $2, 0, 0, 3, false) RETURNING id",
        now, per_second)
    await conn.copy_records_to_table(
        "resident",
        columns=["municipality_id", "family_name", "given_name", "phone", "contact_preference", "sms_consent",
                 "sms_opted_out", "created_at", "updated_at"],
        records=[(municipality_id, "試験", f"{i:05d}", phone_for(i), "SMS", True, False, now, now)
                 for i in range(residents)])
    resident_ids = [r["id"] for r in await conn.fetch("SELECT id FROM resident ORDER BY id")]
    records = []
    send_after = now - timedelta(minutes=5)
    for i in range(messages):
        slot = i % residents
        body = (f"【ベンチ市】スマホ教室のお知らせ（{i}）明日10:00から市民センターで始まります。"
                "お問い合わせ 03-1234-5678")
        count = count_segments(body)
        records.append((municipality_id, resident_ids[slot], "REMINDER_DAY_BEFORE", f"bench:{i}",
                        phone_for(slot), body, count.segments, count.encoding, send_after, "PENDING", 0, 0,
                        now, now))
    await conn.copy_records_to_table(
        "message",
        columns=["municipality_id", "resident_id", "kind", "idempotency_key", "to", "body", "segments",
                 "encoding", "send_after", "status", "attempts", "retries", "created_at", "updated_at"],
        records=records)
    await conn.execute("ANALYZE")


RESET_SQL = """
UPDATE message SET status = 'PENDING', skip_reason = NULL, attempts = 0, retries = 0,
    next_attempt_at = NULL, claimed_by = NULL, claimed_at = NULL, lease_until = NULL,
    send_started_at = NULL, provider_id = NULL, provider_status = NULL, error_code = NULL,
    last_error = NULL, sent_at = NULL, delivered_at = NULL,
    send_after = now() + interval '1 day', updated_at = now()
"""


async def reset_outbox(conn: asyncpg.Connection) -> None:
    """Everything back to PENDING, parked a day ahead until the workers are up."""
    await conn.execute(RESET_SQL)
    await conn.execute("DELETE FROM sms_rate")
    await conn.execute("VACUUM (ANALYZE) message")


async def status_counts(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM message GROUP BY status ORDER BY status")
    return {r["status"]: r["n"] for r in rows}


# --- workers -----------------------------------------------------------------------------------

def worker_command() -> list[str]:
    script = Path(sys.executable).parent / "divide-support"
    if script.exists():
        return [str(script), "worker"]
    found = shutil.which("divide-support")
    if found:
        return [found, "worker"]
    return [sys.executable, "-c", "from divide_support.cli import main; main()", "worker"]


def open_log(path: Path) -> TextIO:
    return path.open("w", encoding="utf-8")


def read_log(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (Linux /proc), None elsewhere or when gone."""
    try:
        fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log_path: Path
    log_file: TextIO


async def start_workers(count: int, env: dict[str, str], log_dir: Path, round_no: int) -> list[Worker]:
    workers = []
    for n in range(count):
        log_path = log_dir / f"round{round_no}-worker{n + 1}.log"
        log_file = open_log(log_path)
        process = await asyncio.create_subprocess_exec(
            *worker_command(), env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log_file,
            stderr=asyncio.subprocess.STDOUT)
        workers.append(Worker(process, log_path, log_file))
    return workers


async def worker_backends(conn: asyncpg.Connection, database: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database)


async def wait_ready(workers: list[Worker], conn: asyncpg.Connection, database: str, within: float) -> None:
    """Every worker logged that its dispatcher started (LOG_LEVEL INFO) or, at a quieter log
    level, printed its banner and the workers hold database connections (they poll)."""
    deadline = time.monotonic() + within
    while True:
        logs = [read_log(w.log_path) for w in workers]
        for worker, text in zip(workers, logs, strict=True):
            if worker.process.returncode is not None:
                raise RuntimeError(f"worker exited with {worker.process.returncode} before starting:\n"
                                   + text[-3000:])
        if all(READY_MARK in text for text in logs):
            return
        if (all(BANNER in text for text in logs)
                and await worker_backends(conn, database) >= len(workers)):
            await asyncio.sleep(0.5)
            return
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start in time:\n" + logs[0][-3000:])
        await asyncio.sleep(0.05)


async def stop_workers(workers: list[Worker], grace: float = 30.0) -> list[int | None]:
    for worker in workers:
        if worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for worker in workers:
        try:
            codes.append(await asyncio.wait_for(worker.process.wait(), grace))
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            await worker.process.wait()
            codes.append(None)  # had to be killed
        worker.log_file.close()
    return codes


# --- one round ---------------------------------------------------------------------------------

@dataclass
class RoundResult:
    workers: int
    elapsed: float
    rate: float
    provider_span: float
    duplicates: int
    losses: int
    phantoms: int
    unsettled: int
    strangers: int
    mismatched: int
    resends: int
    posts: int
    lookups: int
    rejected: int
    timed_out: bool
    statuses: dict[str, int]
    exit_codes: list[int | None]
    log_problems: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.losses or self.phantoms or self.strangers or self.timed_out)


async def postgres_cpu(conn: asyncpg.Connection, database: str) -> float:
    pids = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                            database)
    return sum(cpu_seconds(r["pid"]) or 0.0 for r in pids)


async def run_round(args: argparse.Namespace, conn: asyncpg.Connection, http: aiohttp.ClientSession,
                    fake_url: str, env: dict[str, str], count: int, round_no: int, log_dir: Path,
                    database: str) -> RoundResult:
    async with http.post(f"{fake_url}/_bench/reset") as response:
        response.raise_for_status()
    await reset_outbox(conn)
    workers = await start_workers(count, env, log_dir, round_no)
    timed_out = False
    try:
        await wait_ready(workers, conn, database, within=60)
        await asyncio.sleep(0.2)  # past the first (empty) poll
        pg_cpu_before = await postgres_cpu(conn, database)
        worker_cpu_before = sum(cpu_seconds(w.process.pid) or 0.0 for w in workers)
        started = time.monotonic()
        await conn.execute("UPDATE message SET send_after = now() - interval '1 minute'")
        last_report = started
        while True:
            counts = await status_counts(conn)
            busy = counts.get("PENDING", 0) + counts.get("SENDING", 0)
            now = time.monotonic()
            if busy == 0:
                break
            if now - started > args.timeout:
                timed_out = True
                break
            if now - last_report >= 10:
                last_report = now
                print(f"  ... {now - started:6.1f}s {counts}", file=sys.stderr, flush=True)
            await asyncio.sleep(args.check_interval)
        elapsed = time.monotonic() - started
        settled = sum(counts.values()) - busy  # at the end of the timed part
        cpu = {
            "workers": sum(cpu_seconds(w.process.pid) or 0.0 for w in workers) - worker_cpu_before,
            "postgres": await postgres_cpu(conn, database) - pg_cpu_before,
        }
    finally:
        exit_codes = await stop_workers(workers)

    async with http.get(f"{fake_url}/_bench/stats") as response:
        response.raise_for_status()
        stats = await response.json()
    cpu["fake"] = stats["cpu_seconds"]
    received: dict[str, list[list[str]]] = stats["received"]
    rows = await conn.fetch('SELECT id, status, provider_id, "to", body, attempts FROM message')
    duplicates = losses = phantoms = unsettled = mismatched = resends = 0
    known = set()
    for row in rows:
        key = str(row["id"])
        known.add(key)
        got = received.get(key, [])
        sent = row["status"] in ("SENT", "DELIVERED")
        if len(got) > 1:
            duplicates += 1
        if row["attempts"] > 1:
            resends += 1
        if not got and not sent:
            losses += 1  # neither sent according to the outbox nor seen by the provider
        elif not got and sent:
            phantoms += 1  # the outbox says SENT, the provider never saw it
        elif got and not sent:
            unsettled += 1  # the provider has it, the outbox does not know (yet): e.g. UNKNOWN
        if got and (row["provider_id"] not in {g[0] for g in got}
                    or any(g[1] != row["to"] or g[2] != row["body"] for g in got)):
            mismatched += 1
    strangers = sum(1 for k in received if k not in known)  # posts that name no message of ours

    problems: Counter = Counter()
    for worker in workers:
        for line in read_log(worker.log_path).splitlines():
            for mark in (" ERROR ", " WARNING ", "Traceback"):
                if mark in line:
                    problems[mark.strip()] += 1
    first, last = stats["first_post"], stats["last_post"]
    return RoundResult(
        workers=count, elapsed=elapsed, rate=settled / elapsed if elapsed else 0.0,
        provider_span=(last - first) if first and last else 0.0,
        duplicates=duplicates, losses=losses, phantoms=phantoms, unsettled=unsettled, strangers=strangers,
        mismatched=mismatched, resends=resends, posts=stats["posts"], lookups=stats["gets"],
        rejected=stats["rejected"], timed_out=timed_out, statuses=await status_counts(conn),
        exit_codes=exit_codes, log_problems=problems, cpu=cpu,
    )


def print_round(result: RoundResult) -> None:
    print(f"workers={result.workers}  elapsed={result.elapsed:.2f}s  rate={result.rate:.1f} msg/s  "
          f"duplicates={result.duplicates}  losses={result.losses}  statuses={json.dumps(result.statuses)}")
    print(f"    provider: {result.posts} POSTs in {result.provider_span:.2f}s, {result.lookups} look-ups, "
          f"{result.rejected} rejected; phantoms(SENT, never received)={result.phantoms}  "
          f"unsettled(received, not SENT)={result.unsettled}  unknown ids={result.strangers}  "
          f"sid/to/body mismatches={result.mismatched}  "
          f"attempts>1={result.resends}")
    cpu = "  ".join(f"{k}={v:.1f}s" for k, v in result.cpu.items())
    print(f"    cpu: {cpu} (wall {result.elapsed:.1f}s x {os.cpu_count()} cores)  "
          f"worker exit codes={result.exit_codes}  log={dict(result.log_problems) or 'clean'}"
          + ("  TIMED OUT" if result.timed_out else ""), flush=True)


# --- main --------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="PostgreSQL server (its database is only used to create and drop the bench one)")
    parser.add_argument("--db-name", default=f"ds_bench_{os.getpid()}")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--residents", type=int, default=None,
                        help="distinct recipients (default: one per message)")
    parser.add_argument("--workers", default="1,2,4", help="worker processes per round, e.g. 1,2,4")
    parser.add_argument("--batch-size", type=int, default=50, help="SMS_BATCH_SIZE")
    parser.add_argument("--poll-seconds", type=float, default=0.1, help="SMS_POLL_SECONDS")
    parser.add_argument("--sms-per-second", type=float, default=0.0,
                        help="the municipality's sms_per_second (0: unlimited)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the fake's answer delay per POST")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per round")
    parser.add_argument("--check-interval", type=float, default=0.1, help="seconds between outbox polls")
    parser.add_argument("--log-level", default="INFO", help="the workers' LOG_LEVEL (INFO is the product default)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra worker environment, e.g. --env DB_POOL_MAX=20 (repeatable)")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and worker logs)")
    args = parser.parse_args(argv)
    args.worker_counts = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.messages < 1 or not args.worker_counts or min(args.worker_counts) < 1:
        parser.error("--messages and --workers must be positive")
    args.residents = max(1, min(args.residents or args.messages, args.messages))
    return args


async def bench(args: argparse.Namespace, fake_port: int, log_dir: Path) -> list[RoundResult]:
    database_url = with_database(args.database_url, args.db_name)
    fake_url = f"http://127.0.0.1:{fake_port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "SMS_", "DB_", "DATABASE_"))}
    env.update({
        "DATABASE_URL": database_url, "SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM": FROM_NUMBER, "TWILIO_API_BASE": fake_url,
        "SMS_BATCH_SIZE": str(args.batch_size), "SMS_POLL_SECONDS": str(args.poll_seconds),
        "LOG_LEVEL": args.log_level, "PUBLIC_BASE_URL": "https://bench.invalid", "PYTHONUNBUFFERED": "1",
    })
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value

    results: list[RoundResult] = []
    created = time.monotonic()
    await create_database(args.database_url, args.db_name)
    try:
        await apply_migrations(parse_database_url(database_url), quiet=True)
        conn = await asyncpg.connect(**parse_database_url(database_url).dsn_kwargs())
        try:
            await fill(conn, args.messages, args.residents, args.sms_per_second)
            print(f"database {args.db_name}: {args.messages} messages to {args.residents} residents ready in "
                  f"{time.monotonic() - created:.1f}s; fake Twilio at {fake_url}; "
                  f"batch={args.batch_size} poll={args.poll_seconds}s latency={args.latency_ms}ms "
                  f"log={args.log_level}; "
                  f"worker: {' '.join(worker_command())}", flush=True)
            async with aiohttp.ClientSession() as http:
                for round_no, count in enumerate(args.worker_counts, start=1):
                    result = await run_round(args, conn, http, fake_url, env, count, round_no, log_dir,
                                             args.db_name)
                    print_round(result)
                    results.append(result)
        finally:
            await conn.close()
    finally:
        if args.keep_db:
            print(f"kept database {database_url}")
        else:
            await drop_database(args.database_url, args.db_name)
    return results


def run_sms(server_url: str, messages: int, workers: list[int]) -> list[RoundResult]:
    """The dispatcher benchmark in its own database on `server_url`: one round per worker count."""
    args = parse_args(["--database-url", server_url, "--messages", str(messages),
                       "--workers", ",".join(map(str, workers)), "--log-level", "WARNING"])
    log_dir = Path(tempfile.mkdtemp(prefix="bench_sms_"))
    fake, port = start_fake(args.latency_ms / 1000.0)
    try:
        return asyncio.run(bench(args, port, log_dir))
    finally:
        fake.terminate()
        fake.join(5)
        if fake.is_alive():
            fake.kill()
        shutil.rmtree(log_dir, ignore_errors=True)
