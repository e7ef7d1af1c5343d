from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """Append-only (a trigger in the migrations refuses UPDATE and DELETE).

    Actor and object are kept as plain values, not foreign keys, so the trail
    survives whatever happens to the rows it talks about.
    """

    id = fields.BigIntField(primary_key=True)
    municipality_id = fields.IntField(db_index=True)
    actor_user_id = fields.IntField(null=True)
    actor_email = fields.CharField(max_length=254, null=True)
    actor_role = fields.CharField(max_length=16, null=True)
    action = fields.CharField(max_length=64)
    object_type = fields.CharField(max_length=32, null=True)
    object_ids = fields.JSONField(default=list)
    request_id = fields.CharField(max_length=64, null=True)
    details = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_entry"
        indexes = (("municipality_id", "created_at"),)
