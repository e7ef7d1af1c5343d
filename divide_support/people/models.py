from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

from divide_support.core.tokens import new_calendar_token


class ContactPreference(StrEnum):
    SMS = "SMS"
    PHONE_CALL = "PHONE_CALL"
    POST = "POST"
    NONE = "NONE"


class Device(StrEnum):
    IPHONE = "IPHONE"
    ANDROID = "ANDROID"
    FEATURE_PHONE = "FEATURE_PHONE"
    TABLET = "TABLET"
    NONE = "NONE"
    OTHER = "OTHER"


class SupporterAffiliation(StrEnum):
    CARRIER_SHOP = "CARRIER_SHOP"
    NPO = "NPO"
    VOLUNTEER = "VOLUNTEER"
    CITY_STAFF = "CITY_STAFF"
    STUDENT = "STUDENT"
    OTHER = "OTHER"


class Resident(Model):
    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="residents", on_delete=fields.RESTRICT,
        db_index=True,
    )
    family_name = fields.CharField(max_length=50)
    given_name = fields.CharField(max_length=50)
    kana = fields.CharField(max_length=100, null=True)
    phone = fields.CharField(max_length=20, null=True, db_index=True, description="E.164 mobile")
    landline = fields.CharField(max_length=20, null=True, description="E.164")
    birth_date = fields.DateField(null=True)
    birth_year = fields.IntField(null=True)
    contact_preference = fields.CharEnumField(ContactPreference, max_length=16,
                                              default=ContactPreference.PHONE_CALL)
    sms_consent = fields.BooleanField(default=False)
    sms_opted_out = fields.BooleanField(default=False)
    # Automated voice calls (confirmation, day-before reminder), with who recorded the
    # consent and when (the audit log keeps every change too).
    call_consent = fields.BooleanField(default=False)
    call_consent_at = fields.DatetimeField(null=True)
    call_consent_by = fields.ForeignKeyField(
        "divide_support.User", related_name="recorded_call_consents", null=True,
        on_delete=fields.SET_NULL, db_index=True,
    )
    device = fields.CharEnumField(Device, max_length=16, null=True)
    district = fields.CharField(max_length=100, null=True, db_index=True)
    notes = fields.TextField(null=True)
    # What the resident asked the supporters to know or help with (「字を大きくしてほしい」,
    # 「LINEで孫と話したい」): shown to the supporters of their sessions, unlike staff notes.
    support_needs = fields.TextField(null=True)
    # Set when the personal data was erased (on request or by retention); the row stays so
    # the anonymous counts of the reports stay as they were.
    erased_at = fields.DatetimeField(null=True)
    # The name as search and the duplicate check compare it (people.service.name_key:
    # NFKC, no spaces, katakana as hiragana), kept by the service; NULL once erased.
    # Migration 0008 indexes their prefixes per municipality.
    name_key = fields.CharField(max_length=200, null=True, description="family + given name")
    given_key = fields.CharField(max_length=200, null=True)
    kana_key = fields.CharField(max_length=200, null=True)
    kana_given_key = fields.CharField(max_length=200, null=True,
                                      description="the reading after its first space")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "resident"
        indexes = (("municipality_id", "family_name", "given_name"), ("municipality_id", "kana"))


class Supporter(Model):
    """デジタル活用支援員: volunteers, carrier-shop staff, NPO members, students."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="supporters", on_delete=fields.RESTRICT,
        db_index=True,
    )
    display_name = fields.CharField(max_length=100)
    kana = fields.CharField(max_length=100, null=True)
    affiliation = fields.CharEnumField(SupporterAffiliation, max_length=16)
    organisation = fields.CharField(max_length=200, null=True)
    phone = fields.CharField(max_length=20, null=True)
    email = fields.CharField(max_length=254, null=True)
    skills = fields.JSONField(default=list)
    certified = fields.BooleanField(default=False)
    active = fields.BooleanField(default=True, db_index=True)
    # Personal feed of their duties: /calendar/supporters/{token}.ics (rotatable).
    calendar_token = fields.CharField(max_length=32, unique=True, default=new_calendar_token)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "supporter"
        indexes = (("municipality_id", "display_name"),)
