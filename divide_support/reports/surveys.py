"""Survey documents (YAML or JSON): one shape for the shipped seeds, `import-survey` and the
importSurvey mutation. A malformed document is refused whole, with the place and the reason.

Shape (see seeds/surveys/*.yaml):

    municipality: "142034"          # 全国地方公共団体コード
    key: hiratsuka-2020-internet-use
    title: ...
    year: 2020
    field_period: {from: 2020-11-20, to: 2020-12-11}
    source: ...                     # the document the figures come from
    sample_size: 1699
    metric_groups:
      - key: internet_use
        label: インターネットの利用の有無
        exhaustive: true            # the group's values add up to 100 ± 0.5 in every band
        metrics:
          - {key: using, label: 利用している, need: complement}   # need = 100 - value
          - {key: not_using_want_to, label: ...}                   # need = value (default)
    bands:
      - {label: 16～19歳, min_age: 16, max_age: 19, respondents: 55,
         values: {internet_use.using: 98.2, ...}}
      - {label: 80歳以上, min_age: 80, max_age: null, ...}         # open-ended, last only
    population:                     # optional: residents per band on a date
      - {as_of: 2020-10-01, min_age: 16, max_age: 19, population: 9876}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import NoReturn

import yaml

from divide_support.core.errors import DomainError

KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
MAX_DOCUMENT_CHARS = 200_000
SUM_TOLERANCE = 0.5
NEED_KINDS = ("value", "complement")


@dataclass(frozen=True)
class MetricDef:
    key: str  # full key, e.g. internet_use.using
    label: str
    need: str  # "value" or "complement"


@dataclass(frozen=True)
class MetricGroup:
    key: str
    label: str
    exhaustive: bool
    metrics: tuple[MetricDef, ...]


@dataclass(frozen=True)
class BandDoc:
    label: str
    min_age: int
    max_age: int | None
    respondents: int | None
    values: dict[str, float]


@dataclass(frozen=True)
class PopulationDoc:
    as_of: date
    min_age: int
    max_age: int | None
    population: int


@dataclass(frozen=True)
class SurveyDocument:
    municipality_code: str
    key: str
    title: str
    year: int
    field_from: date | None
    field_to: date | None
    source: str | None
    sample_size: int | None
    groups: tuple[MetricGroup, ...]
    bands: tuple[BandDoc, ...]
    population: tuple[PopulationDoc, ...] = field(default_factory=tuple)

    def metric(self, key: str) -> MetricDef | None:
        for group in self.groups:
            for metric in group.metrics:
                if metric.key == key:
                    return metric
        return None


def _fail(where: str, message: str) -> NoReturn:
    raise DomainError("INVALID_SURVEY", f"{where}: {message}" if where else message,
                      ["input", "document"], message_en=f"{where}: {message}")


class _Reader:
    def __init__(self, raw: object, where: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(raw, Mapping):
            _fail(where, "項目の一覧（key: value の形）で書いてください。")
        unknown = sorted(str(k) for k in raw if k not in allowed)
        if unknown:
            _fail(where, f"知らない項目があります: {', '.join(unknown)}（使える項目: {', '.join(allowed)}）")
        self.raw, self.where = raw, where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def text(self, key: str, max_length: int, *, required: bool = True) -> str | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                _fail(self.at(key), "必須です。")
            return None
        if not isinstance(value, str):
            _fail(self.at(key), f"文字列で書いてください（{value!r}）。")
        if len(value.strip()) > max_length:
            _fail(self.at(key), f"{max_length}文字以内にしてください。")
        return value.strip()

    def integer(self, key: str, low: int, high: int, *, required: bool = True) -> int | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                _fail(self.at(key), "必須です。")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(self.at(key), f"整数で書いてください（{value!r}）。")
        if not low <= value <= high:
            _fail(self.at(key), f"{low}〜{high}の範囲にしてください（{value}）。")
        return value

    def day(self, key: str, *, required: bool = False) -> date | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                _fail(self.at(key), "必須です。")
            return None
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            _fail(self.at(key), f"日付は 2020-11-20 の形で書いてください（{value!r}）。")


def _load(text: str) -> object:
    if len(text) > MAX_DOCUMENT_CHARS:
        _fail("", f"文書が大きすぎます（{MAX_DOCUMENT_CHARS}文字まで）。")
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{mark.line + 1}行目" if mark is not None else ""
        _fail(where, "YAML または JSON として読めません。")


def parse_survey(text: str) -> SurveyDocument:
    """The validated document; DomainError INVALID_SURVEY naming the place otherwise."""
    top = _Reader(_load(text), "", ("municipality", "key", "title", "year", "field_period",
                                    "source", "sample_size", "metric_groups", "bands",
                                    "population"))
    code = top.raw.get("municipality")
    if isinstance(code, int) and not isinstance(code, bool):
        _fail("municipality", "団体コードは引用符で囲んでください（\"092142\"）。")
    if not isinstance(code, str) or not re.fullmatch(r"\d{6}", code):
        _fail("municipality", f"6桁の全国地方公共団体コードを書いてください（{code!r}）。")
    key = top.text("key", 100)
    assert key is not None
    if not KEY.match(key):
        _fail("key", "英小文字・数字・- _ . で書いてください（例: hiratsuka-2020-internet-use）。")
    title = top.text("title", 200)
    year = top.integer("year", 1990, 2100)
    field_from = field_to = None
    if top.raw.get("field_period") is not None:
        period = _Reader(top.raw["field_period"], "field_period", ("from", "to"))
        field_from, field_to = period.day("from"), period.day("to")
        if field_from and field_to and field_to < field_from:
            _fail("field_period", "終了日が開始日より前です。")
    groups = _groups(top.raw.get("metric_groups"))
    bands = _bands(top.raw.get("bands"), groups)
    population = _population(top.raw.get("population"))
    assert title is not None and year is not None
    return SurveyDocument(
        municipality_code=code, key=key, title=title, year=year, field_from=field_from,
        field_to=field_to, source=top.text("source", 2000, required=False),
        sample_size=top.integer("sample_size", 1, 10_000_000, required=False),
        groups=groups, bands=bands, population=population,
    )


def _groups(raw: object) -> tuple[MetricGroup, ...]:
    if not isinstance(raw, list) or not raw:
        _fail("metric_groups", "指標のグループを1つ以上書いてください。")
    groups, seen = [], set()
    for index, item in enumerate(raw):
        where = f"metric_groups[{index}]"
        reader = _Reader(item, where, ("key", "label", "exhaustive", "metrics"))
        key = reader.text("key", 50)
        assert key is not None
        if not KEY.match(key) or "." in key:
            _fail(reader.at("key"), "英小文字・数字・_ で書いてください。")
        exhaustive = reader.raw.get("exhaustive", False)
        if not isinstance(exhaustive, bool):
            _fail(reader.at("exhaustive"), "true または false で書いてください。")
        metrics_raw = reader.raw.get("metrics")
        if not isinstance(metrics_raw, list) or not metrics_raw:
            _fail(reader.at("metrics"), "指標を1つ以上書いてください。")
        metrics = []
        for m_index, m_raw in enumerate(metrics_raw):
            m_reader = _Reader(m_raw, f"{where}.metrics[{m_index}]", ("key", "label", "need"))
            m_key = m_reader.text("key", 50)
            assert m_key is not None
            if not KEY.match(m_key) or "." in m_key:
                _fail(m_reader.at("key"), "英小文字・数字・_ で書いてください。")
            need = m_reader.raw.get("need", "value")
            if need not in NEED_KINDS:
                _fail(m_reader.at("need"), "value または complement と書いてください。")
            full = f"{key}.{m_key}"
            if full in seen:
                _fail(m_reader.at("key"), f"{full} が2回出てきます。")
            seen.add(full)
            metrics.append(MetricDef(full, m_reader.text("label", 100, required=False) or m_key,
                                     need))
        groups.append(MetricGroup(key, reader.text("label", 100, required=False) or key,
                                  exhaustive, tuple(metrics)))
    return tuple(groups)


def _bands(raw: object, groups: tuple[MetricGroup, ...]) -> tuple[BandDoc, ...]:
    if not isinstance(raw, list) or not raw:
        _fail("bands", "年齢区分を1つ以上書いてください。")
    known = {m.key for g in groups for m in g.metrics}
    bands: list[BandDoc] = []
    for index, item in enumerate(raw):
        where = f"bands[{index}]"
        reader = _Reader(item, where, ("label", "min_age", "max_age", "respondents", "values"))
        label = reader.text("label", 50)
        assert label is not None
        where = f"{where}（{label}）"
        reader.where = where
        min_age = reader.integer("min_age", 0, 120)
        max_age = reader.integer("max_age", 0, 120, required=False)
        assert min_age is not None
        if max_age is not None and max_age < min_age:
            _fail(where, f"max_age {max_age} が min_age {min_age} より小さくなっています。")
        if bands:
            previous = bands[-1]
            if previous.max_age is None:
                _fail(where, f"上限のない区分（{previous.label}）の後に区分は置けません。")
            if min_age <= previous.max_age:
                if min_age < previous.min_age:
                    _fail(where, "年齢区分は若い順に並べてください。")
                _fail(where, f"前の区分（{previous.label}: {previous.min_age}〜{previous.max_age}歳）"
                             f"と重なっています。")
        values_raw = reader.raw.get("values") or {}
        if not isinstance(values_raw, Mapping):
            _fail(reader.at("values"), "指標: 割合(%) の形で書いてください。")
        values: dict[str, float] = {}
        for metric, value in values_raw.items():
            if metric not in known:
                _fail(reader.at("values"), f"metric_groups にない指標です: {metric}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(reader.at(f"values.{metric}"), f"数で書いてください（{value!r}）。")
            if not 0 <= value <= 100:
                _fail(reader.at(f"values.{metric}"), f"割合は0〜100で書いてください（{value}）。")
            values[str(metric)] = float(value)
        for group in groups:
            if not group.exhaustive:
                continue
            keys = [m.key for m in group.metrics]
            missing = [k for k in keys if k not in values]
            if missing and len(missing) < len(keys):
                _fail(reader.at("values"), f"{group.key} の値が足りません: {', '.join(missing)}"
                                           "（0 の値も 0.0 と書いてください）")
            if not missing:
                total = sum(values[k] for k in keys)
                if abs(total - 100) > SUM_TOLERANCE:
                    _fail(reader.at("values"), f"{group.key} の合計が {total:.1f}% です"
                                               f"（100 ± {SUM_TOLERANCE} になるはずです）。")
        bands.append(BandDoc(label, min_age, max_age,
                             reader.integer("respondents", 0, 10_000_000, required=False), values))
    labels = [b.label for b in bands]
    if len(set(labels)) != len(labels):
        _fail("bands", "同じ名前の区分が2つあります。")
    return tuple(bands)


def _population(raw: object) -> tuple[PopulationDoc, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        _fail("population", "一覧で書いてください。")
    figures = []
    for index, item in enumerate(raw):
        reader = _Reader(item, f"population[{index}]", ("as_of", "min_age", "max_age", "population"))
        as_of = reader.day("as_of", required=True)
        min_age = reader.integer("min_age", 0, 120)
        max_age = reader.integer("max_age", 0, 120, required=False)
        population = reader.integer("population", 0, 100_000_000)
        assert as_of is not None and min_age is not None and population is not None
        figures.append(PopulationDoc(as_of, min_age, max_age, population))
    return tuple(figures)

