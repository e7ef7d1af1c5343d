"""`divide-support` command line: serve, worker, migrate, seed, create-user, demo, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import warnings
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from tortoise import Tortoise

from divide_support.core.actor import Role
from divide_support.core.database import (
    SEED_LOCK,
    ConnectionParams,
    DatabaseRoles,
    advisory_lock,
    resolve_roles,
    tortoise_config,
)
from divide_support.core.dbroles import warn_if_audit_unprotected
from divide_support.core.errors import DomainError
from divide_support.core.logging import configure_logging
from divide_support.core.settings import get_settings


@contextlib.asynccontextmanager
async def orm(params: ConnectionParams) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(params))
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def _migrate(roles: DatabaseRoles, quiet: bool = False) -> None:
    """Migrate as the owner, then grant the service role (core/dbroles.py)."""
    from divide_support.core.migrate import apply_migrations

    applied = await apply_migrations(roles.owner, service_role=roles.service_role,
                                     create_service_role=roles.create_service_role, quiet=quiet)
    if not quiet:
        print("マイグレーション完了" + (f"（{len(applied)}件適用）" if applied else "（変更なし）"))


async def _seed(params: ConnectionParams, quiet: bool = False) -> dict[str, int]:
    from divide_support.seed import load_reference_data

    async with advisory_lock(params, SEED_LOCK), orm(params):
        counts = await load_reference_data()
    if not quiet:
        print("基準データを読み込みました: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


async def cmd_migrate(args: argparse.Namespace) -> int:
    try:
        await _migrate(await resolve_roles())
    except DomainError as error:
        print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
        return 2
    return 0


async def cmd_seed(args: argparse.Namespace) -> int:
    roles = await resolve_roles()
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
    await _seed(roles.service)
    return 0


async def cmd_create_user(args: argparse.Namespace) -> int:
    from divide_support.accounts.service import create_user

    roles = await resolve_roles()
    params = roles.service
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
        await _seed(params, quiet=True)
    async with orm(params):
        try:
            user = await create_user(
                email=args.email, role=Role(args.role), municipality_code=args.municipality,
                password=args.password, display_name=args.display_name,
                supporter_id=args.supporter_id,
            )
        except DomainError as error:
            print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
            return 2
    print(f"ユーザーを作成しました: {user.email} ({user.role}) id={user.id}")
    return 0


def _read_new_password(from_stdin: bool) -> str:
    """From a prompt (asked twice, never echoed) or one line of standard input: a password on
    the command line would land in the shell's history and in `ps`."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("新しいパスワード: ")
    if getpass.getpass("もう一度入力してください: ") != first:
        raise DomainError("PASSWORD_MISMATCH", "2回の入力が一致しません。", ["password"])
    return first


async def cmd_set_password(args: argparse.Namespace) -> int:
    from divide_support.accounts.service import set_password

    try:
        password = _read_new_password(args.password_stdin)
    except DomainError as error:
        print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
        return 2
    roles = await resolve_roles()
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
    async with orm(roles.service):
        try:
            user = await set_password(email=args.email, password=password)
        except DomainError as error:
            print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
            return 2
    print(f"パスワードを変更しました: {user.email}（ログイン中の端末はすべてログアウトしました）")
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from divide_support.demo import load_demo

    roles = await resolve_roles()
    params = roles.service
    await _migrate(roles, quiet=True)  # as the owner (DATABASE_OWNER_URL when set)
    await _seed(params, quiet=True)
    async with advisory_lock(params, SEED_LOCK), orm(params):
        try:
            counts = await load_demo(args.municipality)
        except ValueError as error:
            print(f"エラー: {error}", file=sys.stderr)
            return 2
    if counts.get("skipped"):
        print("デモデータは既に読み込まれています。")
    else:
        print("デモデータを読み込みました: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


async def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            # Shut down gracefully, then return normally instead of re-raising the signal,
            # so exit handlers run (the embedded PostgreSQL stops when its last user leaves).
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            self._captured_signals.clear()

    from divide_support.app import create_app

    settings = get_settings()
    if settings.embedded:
        problem = _sms_config_problem()
        if problem:
            print(problem, file=sys.stderr)
            return 2
    roles = await resolve_roles()
    params = roles.service
    if settings.embedded:
        await _migrate(roles, quiet=True)
        await _seed(params, quiet=True)
    app = create_app(params, run_worker=settings.embedded)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10, proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # None: keep our logger setup (request ids, masked access log, clean tracebacks)
        # instead of uvicorn's own, which would replace it.
        log_config=None,
    )
    print(f"divide-support: http://{args.host}:{args.port}/graphql"
          + ("（組み込みPostgreSQL）" if settings.embedded else ""), flush=True)
    await warn_if_audit_unprotected(params)
    await Server(config).serve()
    return 0


def _sms_config_problem() -> str | None:
    """A Japanese message when the SMS settings cannot work, checked before anything starts."""
    settings = get_settings()
    if settings.sms_backend != "twilio":
        return None
    missing = [name for name, value in (
        ("TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
        ("TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
    ) if not value]
    if not (settings.twilio_from or settings.twilio_messaging_service_sid):
        missing.append("TWILIO_FROM または TWILIO_MESSAGING_SERVICE_SID")
    if missing:
        return "エラー: SMS_BACKEND=twilio には次の設定が必要です: " + "、".join(missing)
    return None


async def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    from divide_support.messaging.backends import backend_from_settings
    from divide_support.messaging.dispatcher import Dispatcher

    settings = get_settings()
    roles = await resolve_roles()
    params = roles.service
    if settings.embedded:
        await _migrate(roles, quiet=True)
    problem = _sms_config_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    backend = backend_from_settings(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"divide-support worker: SMS backend {backend.name}"
          + ("（組み込みPostgreSQL）" if settings.embedded else ""), flush=True)
    await warn_if_audit_unprotected(params)
    async with orm(params):
        try:
            if args.once:
                stats = await Dispatcher(backend).run_once()
                print(f"claimed={stats.claimed} sent={stats.sent} retried={stats.retried} "
                      f"failed={stats.failed} unknown={stats.unknown} skipped={stats.skipped}")
            else:
                await Dispatcher(backend).run_forever(stop)
        finally:
            await backend.close()
    return 0


async def cmd_import_survey(args: argparse.Namespace) -> int:
    from divide_support.reports.service import import_survey_file

    path = Path(args.file)
    try:
        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"エラー: {path} を読めません（{error.__class__.__name__}）", file=sys.stderr)
        return 2
    roles = await resolve_roles()
    params = roles.service
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
        await _seed(params, quiet=True)
    async with orm(params):
        try:
            survey = await import_survey_file(text)
        except DomainError as error:
            print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
            return 2
        bands = await survey.bands.all().count()
    print(f"調査を取り込みました: {survey.title}（{survey.key}、年齢区分 {bands}）")
    return 0


async def cmd_audit_export(args: argparse.Namespace) -> int:
    """The audit trail as CSV for auditors (UTF-8 with BOM, one row per entry, oldest first)."""
    from divide_support.accounts.service import get_municipality_by_code
    from divide_support.audit.service import EXPORT_COLUMNS, export_rows
    from divide_support.core.spreadsheet import BOM, csv_line

    if args.to < args.from_:
        print("エラー: --to は --from 以降の日付にしてください。", file=sys.stderr)
        return 2
    tz = ZoneInfo("Asia/Tokyo")
    date_from = datetime.combine(args.from_, time.min, tzinfo=tz)
    date_to = datetime.combine(args.to + timedelta(days=1), time.min, tzinfo=tz)
    roles = await resolve_roles()
    params = roles.service
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
    async with orm(params):
        municipality_id = None
        if args.municipality:
            try:
                municipality_id = (await get_municipality_by_code(args.municipality)).id
            except DomainError as error:
                print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
                return 2
        out = sys.stdout if args.output == "-" else await asyncio.to_thread(
            open, args.output, "w", encoding="utf-8", newline="")
        count = 0
        try:
            out.write(BOM + csv_line(EXPORT_COLUMNS))
            async for row in export_rows(date_from=date_from, date_to=date_to,
                                         municipality_id=municipality_id):
                out.write(csv_line(row))
                count += 1
        finally:
            if out is not sys.stdout:
                out.close()
    print(f"監査ログを書き出しました: {count}件（{args.from_}〜{args.to}）", file=sys.stderr)
    return 0


async def cmd_purge(args: argparse.Namespace) -> int:
    """Retention: erase residents past their municipality's period; drop dead tokens."""
    from divide_support.accounts.models import Municipality
    from divide_support.accounts.service import purge_expired_tokens, purge_stale_throttles
    from divide_support.messaging.service import purge_unattributed_replies
    from divide_support.privacy.service import purge_due, retention_due

    roles = await resolve_roles()
    params = roles.service
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
    async with orm(params):
        for municipality in await Municipality.all().order_by("code"):
            due = await retention_due(municipality)
            line = (f"{municipality.name}（{municipality.code}）: 最後の利用から"
                    f"{municipality.retention_years}年を過ぎた住民 {len(due.resident_ids)}人")
            if args.apply:
                erased = await purge_due(due)
                print(f"{line} → {erased}人の個人情報を消去しました")
            else:
                print(line)
        if args.apply:
            tokens = await purge_expired_tokens()
            throttles = await purge_stale_throttles()
            replies = await purge_unattributed_replies()
            print(f"期限切れのログイン情報を削除しました: トークン {tokens}件、ログイン試行記録 {throttles}件")
            print(f"どの自治体にも届かなかった90日以上前の返信を削除しました: {replies}件")
    if not args.apply:
        print("（確認のみ。消去するには --apply を付けて実行してください）")
    return 0


async def cmd_export_schema(args: argparse.Namespace) -> int:
    from divide_support.api.schema import export_sdl

    sdl = export_sdl()
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        await asyncio.to_thread(Path(args.output).write_text, sdl, encoding="utf-8")
    return 0


async def cmd_makemigrations(args: argparse.Namespace) -> int:
    from divide_support.core.migrate import make_migrations

    paths = await make_migrations((await resolve_roles()).owner, args.name)
    print("\n".join(paths) if paths else "No changes detected")
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"日付は YYYY-MM-DD の形で指定してください: {value}") from error


def _supporter_id(value: str) -> int:
    """Staff copy the supporter's ID from the API (opaque) or the database (a number)."""
    from divide_support.api.ids import parse_global_id

    if value.strip().isdigit():
        return int(value)
    parsed = parse_global_id(value.strip())
    if parsed is None or parsed[0] != "Supporter":
        raise argparse.ArgumentTypeError(f"支援員IDとして読み取れません: {value}")
    return parsed[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="divide-support",
        description="スマホ教室・デジタル活用支援の運営サービス (divide-support)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("seed", help="load municipalities and the course catalogue (idempotent)"
                   ).set_defaults(func=cmd_seed)

    user = sub.add_parser("create-user", help="create a login")
    user.add_argument("--email", required=True)
    user.add_argument("--role", required=True, choices=[r.value for r in Role])
    user.add_argument("--municipality", required=True, help="municipality code, e.g. 142034")
    user.add_argument("--password", required=True)
    user.add_argument("--display-name", default=None)
    user.add_argument("--supporter-id", type=_supporter_id, default=None,
                      help="link a SUPPORTER account to this supporter (its GraphQL ID or number)")
    user.set_defaults(func=cmd_create_user)

    password = sub.add_parser(
        "set-password", help="ログインのパスワードを変更する（その人のログインはすべて解除）",
        description="ログインのパスワードを変更し、その人のログイン中の端末をすべてログアウトさせます。"
                    "パスワードは画面で2回入力します（コマンドに書くと履歴に残るため）。")
    password.add_argument("--email", required=True, help="ログインのメールアドレス")
    password.add_argument("--password-stdin", action="store_true",
                          help="パスワードを標準入力の1行から読む（スクリプト用）")
    password.set_defaults(func=cmd_set_password)

    serve = sub.add_parser("serve", help="serve the API (embedded mode: migrate and seed first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the SMS dispatcher (several may run at once)")
    worker.add_argument("--once", action="store_true", help="one round, then exit")
    worker.set_defaults(func=cmd_worker)

    demo = sub.add_parser("demo", help="fill the database with a realistic demo municipality")
    demo.add_argument("--municipality", default="142034")
    demo.set_defaults(func=cmd_demo)

    survey = sub.add_parser("import-survey", help="load a survey baseline (YAML or JSON)")
    survey.add_argument("file", help="a file in the shape of seeds/surveys/*.yaml")
    survey.set_defaults(func=cmd_import_survey)

    audit_export = sub.add_parser(
        "audit-export", help="監査ログをCSVで書き出す（監査・事故調査用）",
        description="監査ログ（誰が・いつ・何を・どの対象に）をCSV（UTF-8 BOM付き）で書き出します。")
    audit_export.add_argument("--from", dest="from_", required=True, type=_date,
                              help="この日から（YYYY-MM-DD、日本時間）")
    audit_export.add_argument("--to", required=True, type=_date,
                              help="この日まで（YYYY-MM-DD、日本時間、この日を含む）")
    audit_export.add_argument("--municipality", default=None,
                              help="この自治体コードの分だけ（省略: すべて。自治体のない"
                                   "ログイン失敗も含む）")
    audit_export.add_argument("--output", default="-", help="出力ファイル（省略または - : 標準出力）")
    audit_export.set_defaults(func=cmd_audit_export)

    purge = sub.add_parser(
        "purge", help="保存期間を過ぎた住民の個人情報を消去する",
        description="最後の利用から自治体の保存期間（既定3年）を過ぎた住民の個人情報を消去します。"
                    "集計の数は変わりません。既定は確認のみ（--dry-run）です。")
    mode = purge.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="対象の人数を表示するだけ（既定）")
    mode.add_argument("--apply", action="store_true", help="実際に消去する")
    purge.set_defaults(func=cmd_purge)

    export = sub.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default="-")
    export.set_defaults(func=cmd_export_schema)

    make = sub.add_parser("makemigrations", help="(developers) write migrations for model changes")
    make.add_argument("--name", default=None)
    make.set_defaults(func=cmd_makemigrations)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        get_settings()
    except ValidationError as error:
        # A mistyped environment variable: say which, without a traceback.
        for problem in error.errors():
            name = "_".join(str(part) for part in problem["loc"]).upper()
            print(f"エラー: 環境変数 {name} の値が正しくありません（{problem['msg']}）",
                  file=sys.stderr)
        sys.exit(2)
    configure_logging()
    warnings.filterwarnings("ignore", module="platformdirs")
    try:
        code = asyncio.run(args.func(args))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
