"""The worker keeps house on a schedule: expired login tokens do not pile up."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from divide_support import worker
from divide_support.accounts import service as accounts
from divide_support.accounts.models import AuthToken, User
from divide_support.messaging.backends.console import ConsoleBackend
from divide_support.messaging.dispatcher import Dispatcher


async def _token(user: User, *, expires_in: timedelta, revoked_ago: timedelta | None = None
                 ) -> AuthToken:
    now = datetime.now(UTC)
    return await AuthToken.create(
        user_id=user.id, token_hash=accounts.hash_token(secrets.token_urlsafe(32)),
        expires_at=now + expires_in,
        revoked_at=now - revoked_ago if revoked_ago is not None else None)


async def test_the_worker_purges_expired_and_revoked_tokens_on_a_schedule(town):
    user = await User.get(id=town.admin.user_id)
    expired = await _token(user, expires_in=-timedelta(days=2))
    revoked = await _token(user, expires_in=timedelta(hours=6), revoked_ago=timedelta(days=2))
    live = await _token(user, expires_in=timedelta(hours=6))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(Dispatcher(ConsoleBackend()), stop,
                                          housekeeping_every=0.05))
    try:
        for _ in range(100):
            if not await AuthToken.filter(id__in=[expired.id, revoked.id]).exists():
                break
            await asyncio.sleep(0.05)
        # A token expiring after the first round goes in a later one: it is a schedule.
        await AuthToken.filter(id=live.id).update(
            expires_at=datetime.now(UTC) - timedelta(days=2))
        for _ in range(100):
            if not await AuthToken.filter(id=live.id).exists():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert not await AuthToken.filter(id__in=[expired.id, revoked.id, live.id]).exists()
    # The town's own logins (valid for hours yet) stay.
    assert await AuthToken.filter(user_id=user.id).count() == 1
