"""Apply and check migrations (Tortoise ORM's built-in migration framework)."""

from __future__ import annotations

import logging

from tortoise.cli.cli import tortoise_cli_context
from tortoise.context import TortoiseContext
from tortoise.migrations.api import migrate as tortoise_migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from divide_support.core.database import (
    APP_LABEL,
    MIGRATE_LOCK,
    ConnectionParams,
    advisory_lock,
    connect,
    tortoise_config,
)
from divide_support.core.dbroles import ensure_login_role, grant_service_role, unprotected_message

log = logging.getLogger(__name__)


async def apply_migrations(params: ConnectionParams, *, service_role: str | None = None,
                           create_service_role: bool = False, quiet: bool = False) -> list[str]:
    """Apply pending migrations as `params` (the owner); returns the names applied. Safe to run
    concurrently. Then, every time, grant `service_role` what the service needs
    (core/dbroles.py; `create_service_role`: create it first if missing) and log a warning
    when the audit trail stays unprotected for it."""
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(f"{app_label}.{name}")
            if not quiet:
                print(f"applied {app_label}.{name}")

    async with advisory_lock(params, MIGRATE_LOCK):
        # A private context so the migration run never disturbs the app's connections.
        async with TortoiseContext():
            await tortoise_migrate(config=tortoise_config(params), progress=progress)
        if service_role:
            conn = await connect(params)
            try:
                if create_service_role:
                    await ensure_login_role(conn, service_role)
                problems = await grant_service_role(conn, service_role)
            finally:
                await conn.close()
            if problems:
                log.warning(unprotected_message(problems))
    return applied


async def pending_model_changes(params: ConnectionParams) -> list[str]:
    """Names of migrations `makemigrations` would write: empty when models match."""
    config = tortoise_config(params)
    async with tortoise_cli_context(config) as ctx:
        detector = MigrationAutodetector(ctx.apps, {APP_LABEL: config["apps"][APP_LABEL]})
        writers = await detector.changes()
    return [w.name for w in writers]


async def make_migrations(params: ConnectionParams, name: str | None = None) -> list[str]:
    """Developer helper: write new migration files for model changes."""
    config = tortoise_config(params)
    async with tortoise_cli_context(config) as ctx:
        detector = MigrationAutodetector(ctx.apps, {APP_LABEL: config["apps"][APP_LABEL]})
        writers = await detector.changes()
        paths = []
        for writer in writers:
            if name:
                number = writer.name.split("_", 1)[0]
                writer.name = f"{number}_{name}"
            paths.append(str(writer.write()))
    return paths
