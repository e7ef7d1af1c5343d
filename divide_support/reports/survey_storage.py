"""Survey baselines stored: imported by staff or the CLI, loaded from the seeds, listed, and
read for their metrics."""

from __future__ import annotations

import asyncio
import hashlib
from importlib.resources import files

from tortoise.transactions import in_transaction

from divide_support.accounts.models import Municipality
from divide_support.audit import service as audit
from divide_support.core.actor import Actor, Role
from divide_support.core.errors import CoreCode, DomainError
from divide_support.core.permissions import require_role
from divide_support.reports.errors import ReportsCode
from divide_support.reports.models import PopulationFigure, Survey, SurveyBand, SurveyValue
from divide_support.reports.surveys import SurveyDocument, parse_survey

SEED_FOLDER = "surveys"


async def save_survey(document: SurveyDocument, municipality: Municipality) -> Survey:
    """Insert or replace (by municipality and key) in one transaction: never half-imported."""
    fingerprint = hashlib.sha256(repr(document).encode("utf-8")).hexdigest()
    async with in_transaction():
        survey = await Survey.filter(municipality_id=municipality.id,
                                     key=document.key).select_for_update().first()
        if survey is not None and survey.fingerprint == fingerprint:
            return survey
        values = dict(fingerprint=fingerprint, title=document.title, year=document.year, field_from=document.field_from,
                      field_to=document.field_to, source=document.source,
                      sample_size=document.sample_size,
                      metric_groups=[{"key": g.key, "label": g.label, "exhaustive": g.exhaustive,
                                      "metrics": [{"key": m.key, "label": m.label, "need": m.need}
                                                  for m in g.metrics]}
                                     for g in document.groups])
        if survey is None:
            survey = await Survey.create(municipality_id=municipality.id, key=document.key,
                                         **values)
        else:
            await Survey.filter(id=survey.id).update(**values)
            await SurveyBand.filter(survey_id=survey.id).delete()
        for position, band in enumerate(document.bands):
            row = await SurveyBand.create(survey_id=survey.id, position=position, label=band.label,
                                          min_age=band.min_age, max_age=band.max_age,
                                          respondents=band.respondents)
            await SurveyValue.bulk_create([SurveyValue(band_id=row.id, metric=metric, percent=value)
                                           for metric, value in band.values.items()])
        for figure in document.population:
            await PopulationFigure.filter(municipality_id=municipality.id, as_of=figure.as_of,
                                          min_age=figure.min_age).delete()
            await PopulationFigure.create(municipality_id=municipality.id, as_of=figure.as_of,
                                          min_age=figure.min_age, max_age=figure.max_age,
                                          population=figure.population)
    return await Survey.get(id=survey.id)


async def read_survey(text: str) -> SurveyDocument:
    """parse_survey beside the event loop: reading a large document takes a while (bounded,
    but up to about a second), and the server goes on answering meanwhile."""
    return await asyncio.to_thread(parse_survey, text)


async def _municipality_of(document: SurveyDocument, field: list[str]) -> Municipality:
    """The registered municipality a survey document names (UNKNOWN_MUNICIPALITY if none)."""
    municipality = await Municipality.get_or_none(code=document.municipality_code)
    if municipality is None:
        raise DomainError(ReportsCode.UNKNOWN_MUNICIPALITY,
                          f"municipality: 団体コード {document.municipality_code} の自治体は登録されていません。",
                          field, message_en=f"Unknown municipality {document.municipality_code}.")
    return municipality


async def import_survey(*, actor: Actor, document_text: str) -> Survey:
    """ADMIN: load a survey of their own municipality (the same shape as the seeds)."""
    require_role(actor, Role.ADMIN)
    document = await read_survey(document_text)
    municipality = await _municipality_of(document, "document")
    if municipality.id != actor.municipality_id:
        raise DomainError(CoreCode.FORBIDDEN, "ほかの自治体の調査は取り込めません。", "document",
                          message_en="The survey belongs to another municipality.")
    survey = await save_survey(document, municipality)
    await audit.record(actor, "survey.import", "Survey", [survey.id], {"key": document.key})
    return survey


async def import_survey_file(text: str) -> Survey:
    """The CLI: any municipality (operators run it), same checks otherwise."""
    document = await read_survey(text)
    municipality = await _municipality_of(document, ["document"])
    return await save_survey(document, municipality)


def seed_documents() -> list[tuple[str, str]]:
    """(file name, text) of the surveys shipped in seeds/surveys/."""
    folder = files("divide_support.seeds").joinpath(SEED_FOLDER)
    return sorted((entry.name, entry.read_text(encoding="utf-8")) for entry in folder.iterdir()
                  if entry.name.endswith(".yaml"))


async def load_seed_surveys() -> int:
    """Idempotent: the same files give the same rows. Skips a survey whose municipality is
    not loaded."""
    loaded = 0
    for name, text in seed_documents():
        try:
            document = parse_survey(text)
        except DomainError as error:
            raise ValueError(f"seeds/surveys/{name}: {error.message}") from error
        municipality = await Municipality.get_or_none(code=document.municipality_code)
        if municipality is None:
            continue
        await save_survey(document, municipality)
        loaded += 1
    return loaded


def surveys_query(actor: Actor):
    require_role(actor, Role.ADMIN, Role.COORDINATOR, Role.PLANNER)
    return Survey.filter(municipality_id=actor.municipality_id).order_by("-year", "key")


def metric_keys(survey: Survey) -> list[str]:
    return [m["key"] for g in survey.metric_groups for m in g["metrics"]]


def metric_labels(survey: Survey) -> list[tuple[str, str]]:
    """(key, what people read) per metric: 「インターネットの利用の有無: 利用している」."""
    return [(m["key"], f"{g['label']}: {m['label']}" if g.get("label") else m["label"])
            for g in survey.metric_groups for m in g["metrics"]]


def metric_need(survey: Survey, metric: str) -> str | None:
    for group in survey.metric_groups:
        for m in group["metrics"]:
            if m["key"] == metric:
                return m.get("need", "value")
    return None
