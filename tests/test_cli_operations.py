"""Running it, as an operator would (issue 10): the installed `divide-support` script in a
subprocess, against a real PostgreSQL. Links follow the port served; a database that cannot be
reached, or a malformed URL, is one Japanese line and exit 2; DATABASE_URL's libpq parameters
reach the driver; settings refuse wrong values; help is Japanese; passwords are not typed on
the command line."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import pty
import re
import secrets
import select
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from argon2 import PasswordHasher
from fake_twilio import TWILIO_FROM, fake_twilio_server  # noqa: F401
from test_cli import SCRIPT, _env, _free_port, _start_serve, _wait_for, run_cli
from tls_postgres import PASSWORD as TLS_PASSWORD
from tls_postgres import tls_postgres_server  # noqa: F401

SURVEY = Path(__file__).resolve().parents[1] / "seeds" / "surveys" / "hiratsuka-2020-internet-use.yaml"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
SECRET = "s3cret-" + secrets.token_hex(4)  # a password that must never be printed
NOT_PROTECTED = "The audit trail is NOT protected"
LOGIN = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }"


def _clean_env(database_url: str | None, **extra: str) -> dict[str, str]:
    env = _env(database_url, **extra)
    for name in ("PUBLIC_BASE_URL", "DATABASE_OWNER_URL", "DATABASE_SERVICE_ROLE"):
        if name not in extra:
            env.pop(name, None)
    return env


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return -9


async def _gql(client: httpx.AsyncClient, query: str, token: str | None = None, **variables):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await client.post("/graphql", json={"query": query, "variables": variables},
                               headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


# --- 1. links follow the port served ----------------------------------------------------


async def test_serve_on_another_port_hands_out_links_and_twilio_callbacks_on_that_port(
        tmp_path, fake_twilio):
    """No PUBLIC_BASE_URL, `serve --port P` (embedded, with its in-process SMS worker): every
    link and the status callback given to Twilio are on P, and a callback Twilio signs for that
    URL is accepted. Twilio cannot reach 127.0.0.1: said once in the log."""
    import pgserver
    from twilio.request_validator import RequestValidator

    data = tmp_path / "data"
    env = _clean_env(None, DIVIDE_SUPPORT_DATA_DIR=str(data), SMS_BACKEND="twilio",
                     TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
                     TWILIO_AUTH_TOKEN=fake_twilio.auth_token, TWILIO_FROM=TWILIO_FROM,
                     TWILIO_API_BASE=fake_twilio.base_url, SMS_POLL_SECONDS="0.5")
    demo = await run_cli("demo", env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    made = await run_cli("create-user", "--email", "staff@example.jp", "--role", "COORDINATOR",
                         "--municipality", "142034", "--password", "long-enough-pw",
                         env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    server = pgserver.get_server(data / "pgdata", cleanup_mode="stop")  # joined, as superuser
    try:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        process = await asyncio.to_thread(_start_serve, env, tmp_path, port)
        try:
            assert await asyncio.to_thread(_wait_for, f"{base}/readyz", 180) == 200
            # no quiet hours (after serve's seeding, which restores them), so the SMS goes out now
            conn = await asyncpg.connect(server.get_uri("divide_support"))
            try:
                await conn.execute("UPDATE municipality SET sms_quiet_from_minute = 0,"
                                   " sms_quiet_until_minute = 0 WHERE code = '142034'")
            finally:
                await conn.close()
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                token = (await _gql(client, LOGIN, e="staff@example.jp", p="long-enough-pw")
                         )["login"]["token"]
                links = await _gql(client, """query($now: DateTime!) {
                    venues { calendarUrl }
                    supporters(first: 5) { edges { node { calendarFeedUrl } } }
                    sessions(first: 50) { edges { node {
                        registrations(first: 3) { edges { node { inviteUrl } } } } } }
                    upcoming: sessions(from: $now, first: 50) { edges { node {
                        id status seatsLeft } } }
                    surveys { id } }""", token,
                                   now=(datetime.now(UTC) + timedelta(hours=3)).isoformat())
                survey = links["surveys"][0]["id"]
                report = await _gql(client, """query($s: ID!) { participationReport(surveyId: $s,
                    metric: "internet_use.using", filter: {from: "2026-01-01", to: "2027-12-31"})
                    { csvUrl chartUrl } }""", token, s=survey)
                urls = [v["calendarUrl"] for v in links["venues"]]
                urls += [e["node"]["calendarFeedUrl"] for e in links["supporters"]["edges"]]
                urls += [r["node"]["inviteUrl"] for e in links["sessions"]["edges"]
                         for r in e["node"]["registrations"]["edges"]]
                urls += list(report["participationReport"].values())
                assert len(urls) > 10
                assert [u for u in urls if not u.startswith(f"{base}/")] == []
                # a link handed out is one this server answers
                venue_feed = await client.get(links["venues"][0]["calendarUrl"])
                assert venue_feed.status_code == 200 and "BEGIN:VCALENDAR" in venue_feed.text

                # an SMS: Twilio is told to call back on this port, and that callback is accepted
                resident = await _gql(client, """mutation { createResident(input: {
                    familyName: "山田", givenName: "花子", phone: "090-1234-5678",
                    contactPreference: SMS, smsConsent: true, birthYear: 1948 })
                    { resident { id } } }""", token)
                session = next(e["node"]["id"] for e in links["upcoming"]["edges"]
                               if e["node"]["status"] == "SCHEDULED" and e["node"]["seatsLeft"])
                await _gql(client, """mutation($s: ID!, $r: ID!) { register(input: {sessionId: $s,
                    residentId: $r, source: PHONE}) { registration { id } } }""", token,
                           s=session, r=resident["createResident"]["resident"]["id"])
                deadline = time.monotonic() + 60
                while not [p for p in fake_twilio.posts if p.form.get("To") == "+819012345678"]:
                    assert time.monotonic() < deadline, "the in-process worker sent nothing"
                    await asyncio.sleep(0.3)
                [post] = [p for p in fake_twilio.posts if p.form.get("To") == "+819012345678"][:1]
                callback = post.form["StatusCallback"]
                assert callback.startswith(f"{base}/webhooks/twilio/status?message_id=")
                sid = fake_twilio.sent[-1]["sid"]
                form = {"MessageSid": sid, "MessageStatus": "delivered",
                        "AccountSid": fake_twilio.account_sid}
                signature = RequestValidator(fake_twilio.auth_token).compute_signature(callback, form)
                answer = await client.post(callback, data=form,
                                           headers={"X-Twilio-Signature": signature})
                assert answer.status_code == 204
        finally:
            assert await asyncio.to_thread(_stop, process) == 0
    finally:
        server.cleanup()
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert log.count(f"Twilio's status callbacks go to {base}/webhooks/twilio/status") == 1


async def test_public_base_url_wins_and_a_mismatch_is_logged_once(fresh_database, tmp_path):
    url, _ = fresh_database
    for command in (["migrate"], ["seed"],
                    ["create-user", "--email", "staff@example.jp", "--role", "COORDINATOR",
                     "--municipality", "142034", "--password", "long-enough-pw"]):
        ran = await run_cli(*command, env=_clean_env(url), cwd=tmp_path)
        assert ran.returncode == 0, ran.stderr

    port, other = _free_port(), _free_port()
    configured = f"http://127.0.0.1:{other}/"
    process = await asyncio.to_thread(_start_serve, _clean_env(url, PUBLIC_BASE_URL=configured),
                                      tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz") == 200
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            token = (await _gql(client, LOGIN, e="staff@example.jp", p="long-enough-pw")
                     )["login"]["token"]
            venue = await _gql(client, """mutation { createVenue(input: {name: "中央公民館",
                kind: COMMUNITY_CENTRE, capacity: 24, hasWifi: true}) { venue { calendarUrl } } }""",
                               token)
    finally:
        assert await asyncio.to_thread(_stop, process) == 0
    assert venue["createVenue"]["venue"]["calendarUrl"].startswith(f"http://127.0.0.1:{other}/calendar/")
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert log.count(f"points at this machine on port {other}, but serve listens on port {port}") == 1

    port = _free_port()
    process = await asyncio.to_thread(
        _start_serve, _clean_env(url, PUBLIC_BASE_URL="http://support.example.jp"), tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/healthz") == 200
    finally:
        assert await asyncio.to_thread(_stop, process) == 0
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert log.count("PUBLIC_BASE_URL (http://support.example.jp) is plain http") == 1
    assert "points at this machine" not in log


# --- 2. a database that cannot be reached, a malformed URL ----------------------------------


def _commands(tmp_path: Path) -> list[list[str]]:
    """Every command that connects to the database (serve answers /readyz 503 instead)."""
    return [
        ["migrate"], ["seed"], ["demo"], ["worker"], ["worker", "--once"], ["purge"],
        ["makemigrations"], ["import-survey", str(SURVEY)],
        ["create-user", "--email", "a@example.jp", "--role", "ADMIN", "--municipality", "142034",
         "--password", "long-enough-pw"],
        ["set-password", "--email", "a@example.jp", "--password-stdin"],
        ["audit-export", "--from", "2026-01-01", "--to", "2026-01-31",
         "--output", str(tmp_path / "audit.csv")],
    ]


async def _run_with_input(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run, [str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=180, input="a-long-enough-password\n")


def _one_japanese_line(ran: subprocess.CompletedProcess, *expected: str) -> str:
    # the test server's superuser makes `migrate` log that the audit trail is not protected
    lines = [line for line in ran.stderr.strip().splitlines() if NOT_PROTECTED not in line]
    assert ran.returncode == 2, (ran.args, ran.stderr)
    assert len(lines) == 1, (ran.args, ran.stderr)
    assert lines[0].startswith("エラー") and JAPANESE.search(lines[0]), lines
    assert "Traceback" not in ran.stderr and SECRET not in ran.stderr + ran.stdout
    for text in expected:
        assert text in lines[0], (ran.args, lines[0])
    return lines[0]


async def test_every_command_says_in_one_line_that_the_database_cannot_be_reached(tmp_path):
    dead = f"postgresql://app:{SECRET}@127.0.0.1:{_free_port()}/divide_support"
    runs = await asyncio.gather(*(_run_with_input(*command, env=_clean_env(dead), cwd=tmp_path)
                                  for command in _commands(tmp_path)))
    for ran in runs:
        line = _one_japanese_line(ran, "DATABASE_URL", "127.0.0.1", "接続を拒否されました",
                                  "ホスト名とポート番号")
        assert ran.stdout.strip() == "", (ran.args, ran.stdout)
    assert line.startswith("エラー [DATABASE_UNAVAILABLE]: DATABASE_URL（app@127.0.0.1:")


def _url_to(params, user: str, database: str, **query: str) -> str:
    """A URL to the test server (TCP or its socket folder), with SECRET as the password."""
    if params.host.startswith("/"):
        query = {"host": params.host, "port": str(params.port), **query}
        where = ""
    else:
        where = f"{params.host}:{params.port}"
    tail = "&".join(f"{key}={value}" for key, value in query.items())
    return f"postgresql://{user}:{SECRET}@{where}/{database}" + (f"?{tail}" if tail else "")


async def test_each_connection_problem_names_what_to_check(database, tmp_path):
    user, name = database.user, database.database
    cases = [
        (_url_to(database, user, f"no_such_db_{secrets.token_hex(3)}"), "データベース名を確認"),
        (_url_to(database, f"no_such_role_{secrets.token_hex(3)}", name), "ユーザー名を確認"),
        (f"postgresql://{user}:{SECRET}@no-such-host.invalid/db", "ホスト名「no-such-host.invalid」"),
        (_url_to(database, user, name, sslmod="require"), "パラメータ「sslmod」"),
        (_url_to(database, user, name, sslmode="verify-full",
                 sslrootcert=f"{tmp_path}/missing-ca.pem"), "sslrootcert"),
    ]
    runs = await asyncio.gather(*(_run_with_input(*command, env=_clean_env(url), cwd=tmp_path)
                                  for url, _ in cases for command in (["migrate"], ["seed"])))
    for ran, (_, expected) in zip(runs, [case for case in cases for _ in range(2)], strict=True):
        _one_japanese_line(ran, "に接続できません", expected)


async def test_a_malformed_url_is_refused_before_anything_runs(tmp_path):
    cases = [
        (f"mysql://app:{SECRET}@db/x", "postgresql://"),
        (f"postgresql://app:{SECRET}@db:54x2/x", "ポート「54x2」"),
        (f"postgresql://app:{SECRET}@extra@db/x", "%40"),
        (f"postgresql://app:{SECRET}@db/x?sslmode=requried", "sslmode「requried」"),
    ]
    runs = await asyncio.gather(*(_run_with_input(*command, env=_clean_env(url), cwd=tmp_path)
                                  for url, _ in cases for command in (["serve"], ["migrate"])))
    for ran, (_, expected) in zip(runs, [case for case in cases for _ in range(2)], strict=True):
        _one_japanese_line(ran, "環境変数 DATABASE_URL", expected)
    # the owner's URL is checked the same way, and a dead owner is named as such
    owner = await run_cli("migrate", env=_clean_env("postgresql://app@db/x",
                                                    DATABASE_OWNER_URL=f"postgres://o:{SECRET}@db:0/x"),
                          cwd=tmp_path)
    _one_japanese_line(owner, "環境変数 DATABASE_OWNER_URL", "ポート「0」")
    dead_owner = f"postgresql://owner:{SECRET}@127.0.0.1:{_free_port()}/x"
    owner = await run_cli("migrate", env=_clean_env("postgresql://app@127.0.0.1/x",
                                                    DATABASE_OWNER_URL=dead_owner), cwd=tmp_path)
    _one_japanese_line(owner, "DATABASE_OWNER_URL（owner@127.0.0.1:", "接続を拒否されました")


# --- 3. DATABASE_URL is a DSN: its parameters reach the driver ------------------------------


async def test_the_url_parameters_reach_the_database_server(fresh_database, tmp_path):
    """application_name is nothing the code knows about: seen by the server, it was the URL
    itself that was handed to the driver, for the service's pool as for `migrate`."""
    url, params = fresh_database
    name = f"ds-ops-{secrets.token_hex(4)}"
    assert (await run_cli("migrate", env=_clean_env(url), cwd=tmp_path)).returncode == 0
    port = _free_port()
    process = await asyncio.to_thread(
        _start_serve, _clean_env(url + ("&" if "?" in url else "?") + f"application_name={name}"),
        tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz") == 200
        conn = await asyncpg.connect(**params.dsn_kwargs())
        try:
            seen = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
                name, params.database)
        finally:
            await conn.close()
    finally:
        assert await asyncio.to_thread(_stop, process) == 0
    assert seen >= 1


async def test_sslmode_verify_full_works_and_fails_clearly(tls_server, tmp_path):
    """Against a PostgreSQL with TLS (a certificate for `localhost` from a CA of the test's own):
    verify-full with that CA connects, encrypted, for migrate and for serve's pool; the same URL
    on 127.0.0.1 is refused as the wrong host, a wrong password names the user; once the server
    has no SSL, sslmode=require is refused instead of silently going unencrypted."""
    import trustme

    ca = tls_server.ca_file
    verified = tls_server.url(sslmode="verify-full", sslrootcert=str(ca))
    migrated = await run_cli("migrate", env=_clean_env(verified), cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    name = f"ds-tls-{secrets.token_hex(4)}"
    process = await asyncio.to_thread(
        _start_serve, _clean_env(f"{verified}&application_name={name}"), tmp_path, port)
    try:
        assert await asyncio.to_thread(_wait_for, f"http://127.0.0.1:{port}/readyz") == 200
        encrypted = tls_server.psql(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            f" WHERE a.application_name = '{name}'")
    finally:
        assert await asyncio.to_thread(_stop, process) == 0
    assert encrypted.strip() == "t"

    wrong_host = tls_server.url(host="127.0.0.1", sslmode="verify-full", sslrootcert=str(ca))
    no_ca = tls_server.url(sslmode="verify-full", sslrootcert=str(tmp_path / "other-ca.pem"))
    (tmp_path / "other-ca.pem").write_bytes(trustme.CA().cert_pem.bytes())
    wrong_password = tls_server.url(password=SECRET, sslmode="require")
    runs = await asyncio.gather(*(run_cli("migrate", env=_clean_env(u), cwd=tmp_path)
                                  for u in (wrong_host, no_ca, wrong_password)))
    _one_japanese_line(runs[0], "証明書はホスト「127.0.0.1」のものではありません")
    _one_japanese_line(runs[1], "証明書を確認できません", "sslrootcert")
    _one_japanese_line(runs[2], "ユーザー「postgres」のパスワードが違います")

    tls_server.set_ssl(False)
    try:
        required = await run_cli("migrate", env=_clean_env(tls_server.url(sslmode="require")),
                                 cwd=tmp_path)
        _one_japanese_line(required, "SSL を使えません", "sslmode")
        plain = await run_cli("migrate", env=_clean_env(tls_server.url(sslmode="disable")),
                              cwd=tmp_path)
        assert plain.returncode == 0, plain.stderr
    finally:
        tls_server.set_ssl(True)
    assert TLS_PASSWORD not in required.stderr + plain.stdout + plain.stderr


# --- 4. settings, --version, help -------------------------------------------------------------


async def test_settings_with_a_fixed_set_of_values_refuse_a_wrong_one_in_japanese(tmp_path):
    cases = [
        ({"LOG_LEVEL": "bogus"}, "LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR"),
        ({"SMS_BACKEND": "twillio"}, "SMS_BACKEND", "console, twilio"),
        ({"GRAPHIQL": "ture"}, "GRAPHIQL", "true か false"),
        ({"GRAPHQL_INTROSPECTION": "maybe"}, "GRAPHQL_INTROSPECTION", "true か false"),
        ({"DB_POOL_MAX": "ten"}, "DB_POOL_MAX", "整数"),
        ({"PUBLIC_BASE_URL": "support.example.jp"}, "PUBLIC_BASE_URL", "https://"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT", "text, json"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN", "16文字以上"),
    ]
    runs = await asyncio.gather(*(run_cli("export-schema", env=_clean_env(None, **variables),
                                          cwd=tmp_path) for variables, _, _ in cases))
    for ran, (_, name, expected) in zip(runs, cases, strict=True):
        _one_japanese_line(ran, f"環境変数 {name} の値が正しくありません", expected)
    fine = await run_cli("export-schema", env=_clean_env(None, LOG_LEVEL="debug", GRAPHIQL=""),
                         cwd=tmp_path)
    assert fine.returncode == 0 and "type Query" in fine.stdout, fine.stderr


async def test_version_comes_from_the_package(tmp_path):
    ran = await run_cli("--version", env=_clean_env(None), cwd=tmp_path)
    assert ran.returncode == 0
    assert ran.stdout.strip() == f"divide-support {importlib.metadata.version('divide-support')}"


_ENGLISH_BOILERPLATE = ("usage:", "options:", "positional arguments", "show this help message",
                        "optional arguments")


def _sections(text: str) -> dict[str, list[str]]:
    """`見出し:` -> its lines, up to the next blank line."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if re.fullmatch(r"\S.*:", line):
            current = sections.setdefault(line[:-1], [])
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line)
    return sections


def _entries(lines: list[str], indent: int = 2) -> dict[str, str]:
    """`--flag VALUE   explanation` (the explanation may start on the next line) -> explanation."""
    entries: dict[str, str] = {}
    name = None
    for line in lines:
        match = re.match(rf"^ {{{indent}}}(\S(?:.*?\S)?)(?:\s{{2,}}(.*))?$", line)
        if match:
            name = match[1]
            entries[name] = match[2] or ""
        elif name is not None:
            entries[name] += line.strip()
    return entries


async def test_every_command_explains_itself_and_every_flag_in_japanese(tmp_path):
    top = await run_cli("--help", env=_clean_env(None), cwd=tmp_path)
    assert top.returncode == 0, top.stderr
    for phrase in _ENGLISH_BOILERPLATE:
        assert phrase not in top.stdout.lower(), phrase
    listed = _entries(_sections(top.stdout)["コマンド"], indent=4)
    # the command list: each with a Japanese summary (on its line or the next)
    assert {"serve", "worker", "migrate", "seed", "create-user", "set-password", "demo",
            "import-survey", "audit-export", "purge", "export-schema", "makemigrations"} <= set(listed)
    assert [name for name, text in listed.items() if not JAPANESE.search(text)] == []

    helps = await asyncio.gather(*(run_cli(name, "--help", env=_clean_env(None), cwd=tmp_path)
                                   for name in listed))
    undocumented: list[str] = []
    for name, ran in zip(listed, helps, strict=True):
        assert ran.returncode == 0, (name, ran.stderr)
        text = ran.stdout
        for phrase in _ENGLISH_BOILERPLATE:
            assert phrase not in text.lower(), (name, phrase)
        usage, _, rest = text.partition("\n\n")
        description = rest.split("\n\n")[0]
        assert JAPANESE.search(description), (name, description)
        sections = _sections(text)
        entries = _entries(sections.get("オプション", []) + sections.get("引数", []))
        # every flag the usage line offers has an explanation in Japanese
        offered = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", usage))
        explained = {flag: text for entry, text in entries.items()
                     for flag in re.findall(r"--?[a-z][a-z-]*", entry)}
        undocumented += [f"{name} {flag}" for flag in sorted(offered)
                         if not JAPANESE.search(explained.get(flag, ""))]
        undocumented += [f"{name} {entry}" for entry, explanation in entries.items()
                         if not JAPANESE.search(explanation)]
    assert undocumented == []


# --- 5. passwords are not typed on the command line --------------------------------------------


def _in_terminal(argv: list[str], env: dict[str, str], cwd: Path,
                 answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run argv on a pseudo-terminal; answer each prompt as it appears; everything the terminal
    showed and the exit code."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the terminal as its controlling tty
        os.chdir(cwd)
        os.execve(argv[0], argv, env)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0].encode() in shown:
                prompt, answer = pending.pop(0)
                shown = shown.replace(prompt.encode(), prompt.encode() + b"<answered>", 1)
                os.write(fd, answer.encode() + b"\n")
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


async def test_create_user_asks_for_the_password_twice_without_echo(fresh_database, tmp_path):
    url, params = fresh_database
    env = _clean_env(url)
    assert (await run_cli("migrate", env=env, cwd=tmp_path)).returncode == 0
    assert (await run_cli("seed", env=env, cwd=tmp_path)).returncode == 0
    command = [str(SCRIPT), "create-user", "--email", "{}@example.jp", "--role", "COORDINATOR",
               "--municipality", "142034"]
    typed = "typed-at-the-prompt-" + secrets.token_hex(3)

    def user(name: str) -> list[str]:
        return [part.format(name) for part in command]

    code, shown = await asyncio.to_thread(_in_terminal, user("prompted"), env, tmp_path,
                                          [("パスワード（10文字以上）: ", typed),
                                           ("もう一度入力してください: ", typed)])
    assert code == 0, shown
    assert "ユーザーを作成しました: prompted@example.jp" in shown
    assert typed not in shown  # never echoed

    code, shown = await asyncio.to_thread(_in_terminal, user("mismatch"), env, tmp_path,
                                          [("パスワード（10文字以上）: ", typed),
                                           ("もう一度入力してください: ", typed + "x")])
    assert code == 2 and "2回の入力が一致しません" in shown, shown

    piped = "from-standard-input-" + secrets.token_hex(3)
    ran = await asyncio.to_thread(subprocess.run, [*user("piped"), "--password-stdin"], env=env,
                                  cwd=tmp_path, input=piped + "\n", capture_output=True, text=True,
                                  timeout=180)
    assert ran.returncode == 0, ran.stderr
    # neither a terminal nor --password-stdin: refused with the way out, nothing read or created
    ran = await asyncio.to_thread(subprocess.run, user("no-terminal"), env=env, cwd=tmp_path,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    _one_japanese_line(ran, "--password-stdin")

    conn = await asyncpg.connect(**params.dsn_kwargs())
    try:
        hashes = {row["email"]: row["password_hash"] for row in await conn.fetch(
            "SELECT email, password_hash FROM app_user")}
    finally:
        await conn.close()
    assert set(hashes) == {"prompted@example.jp", "piped@example.jp"}
    assert PasswordHasher().verify(hashes["prompted@example.jp"], typed)
    assert PasswordHasher().verify(hashes["piped@example.jp"], piped)

    help_text = (await run_cli("create-user", "--help", env=env, cwd=tmp_path)).stdout
    assert "履歴" in help_text and "ps" in help_text  # why --password is not recommended


# --- 6. demo ----------------------------------------------------------------------------------


async def test_demo_for_an_unknown_municipality_answers_in_japanese(fresh_database, tmp_path):
    url, _ = fresh_database
    ran = await run_cli("demo", "--municipality", "999999", env=_clean_env(url), cwd=tmp_path)
    _one_japanese_line(ran, "自治体コード 999999 は登録されていません")
