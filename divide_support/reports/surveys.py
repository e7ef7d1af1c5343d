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
from typing import Any, NoReturn

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from divide_support.core.errors import DomainError
from divide_support.core.text import excerpt, has_refused_characters
from divide_support.reports.errors import ReportsCode

KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
MAX_DOCUMENT_CHARS = 200_000
# Bounds checked while the document is composed, before anything is expanded. A survey
# nests five levels deep, has a few thousand values and needs no aliases; these are generous.
MAX_DEPTH = 20
MAX_ALIASES = 100
MAX_NODES = 50_000  # values and collections, counting what every alias stands for
MAX_SCALAR_CHARS = 10_000  # the longest text field (source) has 2,000
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
    raise DomainError(ReportsCode.INVALID_SURVEY, f"{where}: {message}" if where else message,
                      "document", message_en=f"{where}: {message}" if where else message)


class _TooComplex(Exception):
    def __init__(self, message: str, node_or_mark: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.mark = getattr(node_or_mark, "start_mark", node_or_mark)


class _BoundedComposer(Composer):
    """PyYAML's composer, counting as it goes: nesting depth, aliases, the length of one
    value, and the size of the tree every alias expands to (a "billion laughs" of 400 bytes
    is a tree of ten million nodes). It refuses before any of it is constructed."""

    def _start_bounds(self) -> None:
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in its expansion

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            self._aliases += 1
            mark = self.peek_event().start_mark
            if self._aliases > MAX_ALIASES:
                raise _TooComplex(f"別名（*）が多すぎます（{MAX_ALIASES}個まで）。", mark)
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise _TooComplex("別名（*）がそれ自身を含む値を指しています。", mark)
            return node
        event = self.peek_event()
        if isinstance(event, ScalarEvent):
            if len(event.value) > MAX_SCALAR_CHARS:
                raise _TooComplex(f"値が長すぎます（{MAX_SCALAR_CHARS}文字まで）。", event.start_mark)
            node = super().compose_node(parent, index)
            self._sizes[id(node)] = 1
            return node
        if isinstance(event, SequenceStartEvent | MappingStartEvent):
            if self._depth >= MAX_DEPTH:
                raise _TooComplex(f"入れ子が深すぎます（{MAX_DEPTH}段まで）。", event.start_mark)
            self._depth += 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            self._sizes[id(node)] = self._size_of(node)
            return node
        return super().compose_node(parent, index)

    def _size_of(self, node: Node) -> int:
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            return 1
        size = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        if size > MAX_NODES:
            raise _TooComplex(f"別名（*）を展開すると大きすぎます（値の数 {MAX_NODES}まで）。"
                              if self._aliases else f"値が多すぎます（{MAX_NODES}個まで）。", node)
        return size


try:  # libyaml reads the text (many times faster); the counting composer stays in Python
    from yaml import CParser as _Parser

    class _Loader(_BoundedComposer, _Parser, SafeConstructor, Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            _Parser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_bounds()

except ImportError:  # PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, _BoundedComposer, SafeConstructor,  # type: ignore[no-redef]
                  Resolver):
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_bounds()


_JSON_STRUCTURE = re.compile(r'["\[\]{}]')
_JSON_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*"')


def _json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than limit; linear in the text (json
    itself would recurse, and fail with a RecursionError, on deep nesting)."""
    depth, position = 0, 0
    while (found := _JSON_STRUCTURE.search(text, position)) is not None:
        char = found.group()
        if char == '"':
            rest = _JSON_STRING_REST.match(text, found.end())
            if rest is None:
                return False  # an unterminated string: json says where
            position = rest.end()
            continue
        depth += 1 if char in "[{" else -1
        if depth > limit:
            return True
        position = found.end()
    return False


def _line(mark: Any) -> str:
    return f"{mark.line + 1}行目" if getattr(mark, "line", None) is not None else ""


class _Reader:
    def __init__(self, raw: object, where: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(raw, Mapping):
            _fail(where, "項目の一覧（key: value の形）で書いてください。")
        unknown = [k for k in raw if k not in allowed]
        if unknown:
            names = ", ".join(excerpt(k, 30) if not isinstance(k, str) or len(k) > 30
                              or has_refused_characters(k) else k for k in unknown[:3])
            more = f" ほか{len(unknown) - 3}個" if len(unknown) > 3 else ""
            _fail(where, f"知らない項目があります: {names}{more}（使える項目: {', '.join(allowed)}）")
        self.raw, self.where = raw, where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def text(self, key: str, max_length: int, *, required: bool = True,
             multiline: bool = False) -> str | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                _fail(self.at(key), "必須です。")
            return None
        if not isinstance(value, str):
            _fail(self.at(key), f"文字列で書いてください（{excerpt(value)}）。")
        if len(value.strip()) > max_length:
            _fail(self.at(key), f"{max_length}文字以内にしてください。")
        if has_refused_characters(value.strip(), multiline=multiline):
            _fail(self.at(key), "使えない文字（制御文字など）が含まれています。")
        return value.strip()

    def integer(self, key: str, low: int, high: int, *, required: bool = True) -> int | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                _fail(self.at(key), "必須です。")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(self.at(key), f"整数で書いてください（{excerpt(value)}）。")
        if not low <= value <= high:
            _fail(self.at(key), f"{low}〜{high}の範囲にしてください（{excerpt(value)}）。")
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
            if isinstance(value, str) and len(value) <= 20:
                return date.fromisoformat(value)
        except ValueError:
            pass
        _fail(self.at(key), f"日付は 2020-11-20 の形で書いてください（{excerpt(value)}）。")


def _load(text: str) -> object:
    """The document's data: size, depth, aliases and their expansion bounded before anything
    is built. Python's own limits (a 5,000-digit number, a 30 February) are the document's
    fault too, never an internal error."""
    if len(text) > MAX_DOCUMENT_CHARS:
        _fail("", f"文書が大きすぎます（{MAX_DOCUMENT_CHARS}文字まで）。")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        if _json_depth_exceeds(stripped, MAX_DEPTH):
            _fail("", f"入れ子が深すぎます（{MAX_DEPTH}段まで）。")
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            _fail(f"{error.lineno}行目", "JSON として読めません。")
        except (ValueError, RecursionError):
            _fail("", "JSON として読めません（大きすぎる数などがあります）。")
    loader = None
    try:
        loader = _Loader(text)  # libyaml reads the whole text here: a control character fails now
        return loader.get_single_data()
    except _TooComplex as error:
        _fail(_line(error.mark), error.message)
    except yaml.YAMLError as error:
        _fail(_line(getattr(error, "problem_mark", None)), "YAML または JSON として読めません。")
    except (ValueError, TypeError, OverflowError, RecursionError):
        # e.g. a date that does not exist; PyYAML's constructors raise these as they are
        _fail("", "YAML として読めない値があります（存在しない日付、大きすぎる数など）。")
    finally:
        if loader is not None:
            loader.dispose()


def parse_survey(text: str) -> SurveyDocument:
    """The validated document; DomainError INVALID_SURVEY naming the place otherwise."""
    top = _Reader(_load(text), "", ("municipality", "key", "title", "year", "field_period",
                                    "source", "sample_size", "metric_groups", "bands",
                                    "population"))
    code = top.raw.get("municipality")
    if isinstance(code, int) and not isinstance(code, bool):
        _fail("municipality", "団体コードは引用符で囲んでください（\"092142\"）。")
    if not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code):
        _fail("municipality", f"6桁の全国地方公共団体コードを書いてください（{excerpt(code)}）。")
    key = top.text("key", 100)
    assert key is not None
    if not KEY.fullmatch(key):
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
        field_to=field_to, source=top.text("source", 2000, required=False, multiline=True),
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
        if not KEY.fullmatch(key) or "." in key:
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
            if not KEY.fullmatch(m_key) or "." in m_key:
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
                _fail(reader.at("values"), f"metric_groups にない指標です: {excerpt(metric, 40)}"
                      if not isinstance(metric, str) or len(metric) > 40
                      else f"metric_groups にない指標です: {metric}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(reader.at(f"values.{metric}"), f"数で書いてください（{excerpt(value)}）。")
            if not 0 <= value <= 100:
                _fail(reader.at(f"values.{metric}"), f"割合は0〜100で書いてください（{excerpt(value)}）。")
            values[str(metric)] = float(value)
        for group in groups:
            if not group.exhaustive:
                continue
            keys = [m.key for m in group.metrics]
            missing = [k for k in keys if k not in values]
            if missing and len(missing) < len(keys):
                more = f" ほか{len(missing) - 3}個" if len(missing) > 3 else ""
                _fail(reader.at("values"), f"{group.key} の値が足りません: {', '.join(missing[:3])}"
                                           f"{more}（0 の値も 0.0 と書いてください）")
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

