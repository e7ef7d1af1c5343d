"""The background worker (`divide-support worker`, or inside `serve` in the embedded mode):
the SMS dispatcher, and the housekeeping that keeps tables from growing without end."""

from __future__ import annotations

import asyncio
import logging

from divide_support.accounts.service import purge_expired_tokens, purge_stale_throttles
from divide_support.messaging.dispatcher import Dispatcher

log = logging.getLogger(__name__)

# Login tokens live 12 hours by default: purging once an hour keeps the table small.
HOUSEKEEPING_SECONDS = 3600.0


async def housekeeping() -> tuple[int, int]:
    """Expired and revoked login tokens, and login counters long over: (tokens, counters)
    deleted."""
    return await purge_expired_tokens(), await purge_stale_throttles()


async def _keep_house(stop: asyncio.Event, every: float) -> None:
    while not stop.is_set():
        try:
            tokens, throttles = await housekeeping()
            if tokens or throttles:
                log.info("housekeeping: %d expired tokens, %d stale login counters deleted",
                         tokens, throttles)
        except Exception:  # a database hiccup must not end the worker
            log.exception("housekeeping failed")
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass


async def run(dispatcher: Dispatcher, stop: asyncio.Event, *,
              housekeeping_every: float = HOUSEKEEPING_SECONDS) -> None:
    """Send SMS until `stop` is set; housekeeping at start and then every hour."""
    await asyncio.gather(dispatcher.run_forever(stop), _keep_house(stop, housekeeping_every))
