"""`divide-support` command line: serve, worker, migrate, seed, create-user, demo, export-schema.

Help, refusals and errors are Japanese; a problem the operator can fix (a wrong flag, a
setting, a database that cannot be reached) is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import re
import sys
import unicodedata
import warnings
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from tortoise import Tortoise, connections

from divide_support.accounts.errors import AccountsCode
from divide_support.core.actor import Role
from divide_support.core.database import (
    SEED_LOCK,
    ConnectionParams,
    DatabaseRoles,
    advisory_lock,
    connect,
    explain_connection_errors,
    resolve_roles,
    tortoise_config,
)
from divide_support.core.dbroles import warn_if_audit_unprotected
from divide_support.core.errors import DomainError
from divide_support.core.logging import configure_logging
from divide_support.core.publicurl import log_base_url_warnings, serve_at
from divide_support.core.settings import get_settings, settings_problems


@contextlib.asynccontextmanager
async def orm(params: ConnectionParams) -> AsyncIterator[None]:
    """Tortoise as `params`, connected before the command's work starts: a database that
    cannot be reached is one clear line (DatabaseUnavailable), not a failure halfway."""
    await Tortoise.init(config=tortoise_config(params))
    try:
        async with explain_connection_errors(params):
            await connections.get("default").execute_query("SELECT 1")
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

    password = args.password if args.password is not None else _read_new_password(
        args.password_stdin, "パスワード（10文字以上）: ")
    roles = await resolve_roles()
    params = roles.service
    if get_settings().embedded:
        await _migrate(roles, quiet=True)
        await _seed(params, quiet=True)
    async with orm(params):
        try:
            user = await create_user(
                email=args.email, role=Role(args.role), municipality_code=args.municipality,
                password=password, display_name=args.display_name,
                supporter_id=args.supporter_id,
            )
        except DomainError as error:
            print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
            return 2
    print(f"ユーザーを作成しました: {user.email} ({user.role}) id={user.id}")
    return 0


def _read_new_password(from_stdin: bool, prompt: str = "新しいパスワード: ") -> str:
    """From a prompt (asked twice, never echoed) or one line of standard input: a password on
    the command line would land in the shell's history and in `ps`. `create-user` and
    `set-password` both read it here."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        # getpass would fall back to reading stdin with an English warning that it echoes
        raise DomainError(AccountsCode.PASSWORD_REQUIRED, "パスワードを尋ねる端末がありません。標準入力から"
                          "渡すときは --password-stdin を付けてください。", "password")
    import getpass

    try:
        first = getpass.getpass(prompt)
        again = getpass.getpass("もう一度入力してください: ")
    except EOFError:
        raise DomainError(AccountsCode.PASSWORD_REQUIRED, "パスワードが入力されませんでした。",
                          "password") from None
    if again != first:
        raise DomainError(AccountsCode.PASSWORD_MISMATCH, "2回の入力が一致しません。", "password")
    return first


async def cmd_set_password(args: argparse.Namespace) -> int:
    from divide_support.accounts.service import set_password

    password = _read_new_password(args.password_stdin)
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
    from divide_support.accounts.service import get_municipality_by_code
    from divide_support.demo import load_demo

    roles = await resolve_roles()
    params = roles.service
    await _migrate(roles, quiet=True)  # as the owner (DATABASE_OWNER_URL when set)
    await _seed(params, quiet=True)
    async with advisory_lock(params, SEED_LOCK), orm(params):
        await get_municipality_by_code(args.municipality)  # NOT_FOUND, in Japanese
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
    serve_at(args.host, args.port)  # links point here unless PUBLIC_BASE_URL says otherwise
    log_base_url_warnings(args.host, args.port)
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

    from divide_support import worker
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
    async with orm(params):
        print(f"divide-support worker: SMS backend {backend.name}"
              + ("（組み込みPostgreSQL）" if settings.embedded else ""), flush=True)
        await warn_if_audit_unprotected(params)
        log_base_url_warnings(None, None)
        try:
            if args.once:
                stats = await Dispatcher(backend).run_once()
                print(f"claimed={stats.claimed} sent={stats.sent} retried={stats.retried} "
                      f"failed={stats.failed} unknown={stats.unknown} skipped={stats.skipped}")
            else:
                await worker.run(Dispatcher(backend), stop)
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

    owner = (await resolve_roles()).owner
    await (await connect(owner)).close()  # a clear line when it cannot be reached
    paths = await make_migrations(owner, args.name)
    print("\n".join(paths) if paths else "No changes detected")
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"日付は YYYY-MM-DD の形で指定してください: {value}") from error


def _supporter_id(value: str) -> int:
    """Staff copy the supporter's ID from the API (opaque) or the database (a number)."""
    from divide_support.core.ids import parse_global_id

    if value.strip().isdigit():
        return int(value)
    parsed = parse_global_id(value.strip())
    if parsed is None or parsed[0] != "Supporter":
        raise argparse.ArgumentTypeError(f"支援員IDとして読み取れません: {value}")
    return parsed[1]


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"ポートは 1〜65535 の数字で指定してください: {value}")
    return int(value)


def _version() -> str:
    try:
        return importlib.metadata.version("divide-support")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "（不明）"


def _width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def _wrap(text: str, width: int) -> list[str]:
    """Lines of at most `width` columns, Japanese counted two wide and broken between any two
    characters, ASCII words (flags, variable names) kept whole."""
    lines: list[str] = []
    line, used = "", 0
    for token in re.findall(r"[\x21-\x7e]+|\s+|.", " ".join(text.split())):
        size = sum(_width(char) for char in token)
        if token.isspace():
            if line:
                line, used = line + " ", used + 1
            continue
        # never begin a line with closing punctuation, nor end one with an opening bracket
        if line and used + size > width and token not in "、。）」』":
            carried = line[-1] if line[-1] in "（「『" else ""
            lines.append(line[:len(line) - len(carried)].rstrip())
            line, used = carried, _width(carried) if carried else 0
        line, used = line + token, used + size
    if line.strip():
        lines.append(line.rstrip())
    return lines


class _Formatter(argparse.HelpFormatter):
    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "使い方: " if prefix is None else prefix)

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in _wrap(text, width - len(indent)))


# argparse's own refusals, in Japanese (its English messages are the keys: Python 3.11-3.13)
_REFUSALS = [
    (r"the following arguments are required: (.*)", r"次の指定が必要です: \1"),
    (r"unrecognized arguments: (.*)", r"知らない引数です: \1"),
    (r"ambiguous option: (\S+) could match (.*)", r"\1 は次のどれとも取れます: \2"),
    (r"one of the arguments (.*) is required", r"\1 のどれかを指定してください"),
    (r"argument (.+?): invalid choice: (.*?) \(choose from (.*)\)", r"\1: \2 は選べません（\3 のどれか）"),
    (r"argument (.+?): invalid \w+ value: (.*)", r"\1: \2 は正しい値ではありません"),
    (r"argument (.+?): expected one argument", r"\1 のあとに値を1つ書いてください"),
    (r"argument (.+?): not allowed with argument (.*)", r"\1 と \2 は同時に指定できません"),
    (r"argument (.+?): (.*)", r"\1: \2"),
]


class _Parser(argparse.ArgumentParser):
    """argparse with Japanese headings, `-h` and refusals (exit 2, one line after the usage)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "引数"
        self._optionals.title = "オプション"
        self.add_argument("-h", "--help", action="help", default=argparse.SUPPRESS,
                          help="この説明を表示して終わります")

    def error(self, message: str) -> NoReturn:
        for pattern, japanese in _REFUSALS:
            if re.fullmatch(pattern, message, re.DOTALL):
                message = re.sub(pattern, japanese, message, flags=re.DOTALL)
                break
        self.print_usage(sys.stderr)
        self.exit(2, f"エラー: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="divide-support",
        description="スマホ教室・デジタル活用支援の運営サービス (divide-support)。設定は環境変数で"
                    "行います（README の Configuration）。各コマンドの説明は divide-support "
                    "<コマンド> --help で表示します。",
        epilog="終了コード: 0 は成功、2 は指定・設定の誤りやデータベースにつながらないとき"
               "（理由は日本語で1行）。",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="バージョンを表示して終わります")
    sub = parser.add_subparsers(dest="command", required=True, title="コマンド",
                                metavar="<コマンド>")

    def command(name: str, summary: str, description: str, func: Any) -> argparse.ArgumentParser:
        made = sub.add_parser(name, help=summary, description=f"{summary}。{description}")
        made.set_defaults(func=func)
        return made

    command("serve", "API を提供する",
            "/graphql（ブラウザには GRAPHIQL の設定に従って GraphiQL）、/healthz、/readyz、"
            "カレンダー・集計・Twilio の URL を提供します。組み込みモード（DATABASE_URL 未設定）"
            "では先にマイグレーションと基準データの読み込みを行い、SMS の送信も同じプロセスで"
            "動かします。PUBLIC_BASE_URL が未設定なら、渡すリンクはこのホストとポートを指します。"
            "SIGTERM か Ctrl-C で、処理中のリクエストを終えてから止まります。", cmd_serve)
    serve = sub.choices["serve"]
    serve.add_argument("--host", default="127.0.0.1",
                       help="待ち受けるアドレス（既定: 127.0.0.1。ほかの端末から使うときは 0.0.0.0 "
                            "にして PUBLIC_BASE_URL を設定）")
    serve.add_argument("--port", type=_port, default=8000, help="待ち受けるポート（既定: 8000）")

    worker = command("worker", "SMS の送信処理を動かす",
                     "送る時刻になった SMS を送り、結果を記録します。SIGTERM か Ctrl-C まで動き"
                     "続けます。いくつ同時に動かしても、同じ SMS を二重に送りません。", cmd_worker)
    worker.add_argument("--once", action="store_true", help="1回分だけ処理して終わる")

    command("migrate", "データベースを最新の形にする",
            "migrations/ のマイグレーションを所有者（DATABASE_OWNER_URL、未設定なら DATABASE_URL）"
            "として適用し、サービスのロールに必要な権限だけを毎回付与します。何度実行しても、"
            "同時に実行しても安全です。", cmd_migrate)
    command("seed", "基準データを読み込む",
            "seeds/ の YAML（自治体、国の標準メニューの講座カタログ、調査）を読み込みます。"
            "何度実行しても同じ結果になり、職員が作った講座はそのまま残します。", cmd_seed)

    user = command("create-user", "ログインを作成する",
                   "職員・支援員・企画担当のログインを作成します。パスワードは画面で2回入力するか、"
                   "--password-stdin で標準入力から渡します。", cmd_create_user)
    user.add_argument("--email", required=True, help="ログインに使うメールアドレス")
    user.add_argument("--role", required=True, choices=[r.value for r in Role],
                      help="役割: ADMIN（管理者）、COORDINATOR（運営担当）、SUPPORTER（支援員。"
                           "--supporter-id が必要）、PLANNER（集計だけを見る企画担当）")
    user.add_argument("--municipality", required=True, help="自治体コード（例: 142034 = 平塚市）")
    secret = user.add_mutually_exclusive_group()
    secret.add_argument("--password", default=None,
                        help="パスワード（10文字以上）。おすすめしません: コマンドに書いたパスワードは"
                             "シェルの履歴と ps に残ります。省略すると画面で2回尋ねます")
    secret.add_argument("--password-stdin", action="store_true",
                        help="パスワードを標準入力の1行から読む（スクリプト用）")
    user.add_argument("--display-name", default=None,
                      help="画面に出す名前（省略: メールアドレスの @ より前）")
    user.add_argument("--supporter-id", type=_supporter_id, default=None,
                      help="SUPPORTER のログインを結び付ける支援員（GraphQL の ID か番号）")

    password = command("set-password", "ログインのパスワードを変更する",
                       "その人のログイン中の端末はすべてログアウトします。パスワードは画面で2回"
                       "入力します（コマンドに書くと履歴に残るため）。", cmd_set_password)
    password.add_argument("--email", required=True, help="ログインのメールアドレス")
    password.add_argument("--password-stdin", action="store_true",
                          help="パスワードを標準入力の1行から読む（スクリプト用）")

    demo = command("demo", "デモ用の自治体データを入れる",
                   "会場、1か月分の教室と相談会、支援員、住民200人を入れます。2回目は何も"
                   "変えません。住民の携帯番号は架空なので、SMS は送らずに取り下げます。", cmd_demo)
    demo.add_argument("--municipality", default="142034",
                      help="デモデータを入れる自治体のコード（既定: 142034 = 平塚市）")

    survey = command("import-survey", "調査の基準値を取り込む",
                     "YAML か JSON の調査結果を取り込みます。同じファイルをもう一度取り込んでも"
                     "変わりません。形の誤りがあれば、場所と理由を示して全体を取り込みません。",
                     cmd_import_survey)
    survey.add_argument("file", metavar="FILE", help="seeds/surveys/*.yaml と同じ形のファイル")

    audit_export = command("audit-export", "監査ログをCSVで書き出す",
                           "監査ログ（誰が・いつ・何を・どの対象に）をCSV（UTF-8 BOM付き）で"
                           "書き出します（監査・事故調査用）。", cmd_audit_export)
    audit_export.add_argument("--from", dest="from_", required=True, type=_date, metavar="YYYY-MM-DD",
                              help="この日から（YYYY-MM-DD、日本時間）")
    audit_export.add_argument("--to", required=True, type=_date, metavar="YYYY-MM-DD",
                              help="この日まで（YYYY-MM-DD、日本時間、この日を含む）")
    audit_export.add_argument("--municipality", default=None,
                              help="この自治体コードの分だけ（省略: すべて。自治体のない"
                                   "ログイン失敗も含む）")
    audit_export.add_argument("--output", default="-", help="出力ファイル（省略または - : 標準出力）")

    purge = command("purge", "保存期間を過ぎた住民の個人情報を消去する",
                    "最後の利用から自治体の保存期間（既定3年）を過ぎた住民の個人情報を消去します。"
                    "集計の数は変わりません。既定は確認のみ（--dry-run）です。", cmd_purge)
    mode = purge.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="対象の人数を表示するだけ（既定）")
    mode.add_argument("--apply", action="store_true",
                      help="実際に消去し、期限切れのログイン情報も削除する")

    export = command("export-schema", "GraphQL のスキーマ（SDL）を書き出す",
                     "graphql/schema.graphql はこの出力です（ずれるとテストが失敗します）。",
                     cmd_export_schema)
    export.add_argument("--output", default="-", help="出力ファイル（省略または - : 標準出力）")

    make = command("makemigrations", "（開発者向け）モデルの変更からマイグレーションを書く",
                   "所有者（DATABASE_OWNER_URL、未設定なら DATABASE_URL）として接続し、"
                   "モデルとマイグレーションの違いを新しいマイグレーションにします。",
                   cmd_makemigrations)
    make.add_argument("--name", default=None, help="マイグレーションの名前（省略: 自動で付けます）")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        get_settings()
    except ValidationError as error:
        # A mistyped environment variable: say which and why, without a traceback.
        for line in settings_problems(error):
            print(line, file=sys.stderr)
        sys.exit(2)
    configure_logging()
    warnings.filterwarnings("ignore", module="platformdirs")
    try:
        code = asyncio.run(args.func(args))
    except DomainError as error:  # e.g. the database cannot be reached (DatabaseUnavailable)
        print(f"エラー [{error.code}]: {error.message}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
