"""One logger setup for every command."""

from __future__ import annotations

import logging

from divide_support.core.settings import get_settings


def configure_logging() -> None:
    level = get_settings().log_level.upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pgserver and Tortoise are chatty at INFO; their warnings still show. The twilio client
    # logs every request at INFO, residents' numbers included: never below WARNING.
    for noisy in ("pgserver", "tortoise", "asyncio", "twilio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
