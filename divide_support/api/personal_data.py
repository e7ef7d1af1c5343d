"""Personal data in answers: who may read which field (the rule is core.permissions'), and
the audit row for every read, written before the answer leaves the server."""

from __future__ import annotations

from typing import TypeVar

from tortoise.transactions import in_transaction

from divide_support.api.context import Context, Info
from divide_support.audit import service as audit

T = TypeVar("T")

# The audit action per kind of object whose personal data was read.
READ_ACTIONS = {
    "Resident": "resident.pii_read",
    "Supporter": "supporter.pii_read",
    "InboundMessage": "inbound_message.pii_read",
    "Visit": "visit.pii_read",
    "FollowUp": "followup.pii_read",
}


def read(info: Info, object_type: str, object_id: int | None, field_name: str, value: T,
         *, allowed: bool) -> T | None:
    """`value` for a reader who may see it (the read is noted for the audit log), else None.
    A read of an empty field is noted too: staff looked."""
    if not allowed:
        return None
    info.context.note_pii_read(object_type, object_id, field_name)
    return value


async def record_reads(context: Context) -> None:
    """One audit row per reader and kind of object, all or none. Called after execution and
    before the response is sent: if it fails, the answer is not sent either."""
    if not context.pii_reads:
        return
    async with in_transaction():
        for (actor, object_type), reads in context.pii_reads.items():
            fields = sorted({name for names in reads.values() for name in names})
            await audit.record(actor, READ_ACTIONS[object_type], object_type, reads.keys(),
                               {"fields": fields})
    context.pii_reads.clear()
