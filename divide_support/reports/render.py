"""The participation report as CSV (for spreadsheets) and as an SVG bar chart."""

from __future__ import annotations

import csv
import io
from xml.sax.saxutils import escape, quoteattr

from divide_support.core.spreadsheet import safe_cell
from divide_support.reports.activity import ActivityRow
from divide_support.reports.participation import Report, Row

CSV_HEADERS = ["年齢区分", "最小年齢", "最大年齢", "調査回答者数", "参加者数（実人数）", "申込数", "出席数",
               "欠席数", "欠席率", "相談件数", "フォローアップ完了", "自分で使えるようになった",
               "参加者の割合", "支援が必要な人の割合", "代表性指数", "秘匿"]


# What a planner's file says about the cell key method (reports/cellkey.py).
def perturbed_note(what: str) -> str:
    return (f"※個人が特定されないよう、{what}には小さな調整（最大±2）を加えています。同じ条件なら"
            "何度出力しても同じ値です。合計も別に調整するため、各行の和と一致しないことがあります。")


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _cells(row: Row) -> list[str]:
    return [safe_cell(row.label), _number(row.min_age) if row.is_band else "",
            _number(row.max_age) if row.is_band else "", _number(row.respondents),
            _number(row.participants), _number(row.registrations), _number(row.attendances),
            _number(row.no_shows), _number(row.no_show_rate), _number(row.visits),
            _number(row.follow_ups_done), _number(row.uses_independently),
            _number(row.participant_share), _number(row.need_share),
            _number(row.representation), "秘匿" if row.suppressed else ""]


def title(report: Report) -> str:
    period = f"{report.filter.date_from:%Y年%m月%d日}〜{report.filter.date_to:%Y年%m月%d日}"
    return f"年齢区分別の参加状況 {period}（基準: {report.survey.title} / {report.metric}）"


def to_csv(report: Report) -> bytes:
    """UTF-8 with a BOM, so spreadsheet software opens the Japanese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title(report)])
    writer.writerow(CSV_HEADERS)
    for row in [*report.rows, report.total]:
        writer.writerow(_cells(row))
    if report.suppressed_any:
        writer.writerow(["※5人未満の区分と、合計から計算できてしまう区分は秘匿しています。"])
    if report.perturbed:
        writer.writerow([perturbed_note("人数・件数")])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


BAR_PARTICIPANTS = "#1f6fb2"
BAR_NEED = "#e08a1e"


def to_svg(report: Report) -> bytes:
    """Per band, the share of participants beside the share of need, with Japanese labels."""
    bands = [r for r in report.rows if r.is_band]
    width, left, top, bottom = 760, 70, 80, 90
    group = max(60, (width - left - 20) // max(1, len(bands)))
    width = left + group * len(bands) + 20
    height = 420
    plot = height - top - bottom
    # Bars and labels from the unrounded shares: a label rounded from the 4-place share
    # would be rounded twice (0.2518 % -> 0.0025 -> "0.2%").
    highest = max([0.5, *(r.participant_fraction or 0 for r in bands),
                   *(r.need_fraction or 0 for r in bands)])
    scale = plot / highest
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="\'Noto Sans JP\', \'Hiragino Sans\', '
        f'\'Yu Gothic\', Meiryo, sans-serif" role="img">',
        f"<title>{escape(title(report))}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{left}" y="28" font-size="16" font-weight="bold">{escape(title(report))}</text>',
        f'<rect x="{left}" y="44" width="14" height="14" fill="{BAR_PARTICIPANTS}"/>'
        f'<text x="{left + 20}" y="56" font-size="13">参加者の割合</text>',
        f'<rect x="{left + 130}" y="44" width="14" height="14" fill="{BAR_NEED}"/>'
        f'<text x="{left + 150}" y="56" font-size="13">支援が必要な人の割合（調査より）</text>',
    ]
    for tick in range(0, 6):
        value = highest * tick / 5
        y = top + plot - value * scale
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" '
                     f'stroke="#dddddd"/><text x="{left - 8}" y="{y + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{value * 100:.0f}%</text>')
    bar = (group - 20) / 2
    for index, row in enumerate(bands):
        x = left + index * group + 10
        parts.append(f'<g class="band" data-label={quoteattr(row.label)}>')
        for offset, value, color, kind in ((0, row.participant_fraction, BAR_PARTICIPANTS,
                                            "participants"),
                                           (bar, row.need_fraction, BAR_NEED, "need")):
            h = (value or 0) * scale
            label = "秘匿" if value is None and row.suppressed else (
                "—" if value is None else f"{value * 100:.1f}%")
            parts.append(f'<rect class="{kind}" x="{x + offset:.1f}" y="{top + plot - h:.1f}" '
                         f'width="{bar:.1f}" height="{h:.1f}" fill="{color}">'
                         f"<title>{escape(row.label)} {label}</title></rect>")
            parts.append(f'<text x="{x + offset + bar / 2:.1f}" y="{top + plot - h - 4:.1f}" '
                         f'font-size="10" text-anchor="middle">{escape(label)}</text>')
        parts.append(f'<text x="{x + bar:.1f}" y="{top + plot + 18}" font-size="12" '
                     f'text-anchor="middle">{escape(row.label)}</text></g>')
    parts.append(f'<line x1="{left}" y1="{top + plot}" x2="{width - 20}" y2="{top + plot}" '
                 f'stroke="#333333"/>')
    unknown = "秘匿" if report.unknown_age is None else f"{report.unknown_age}人"
    participants = "秘匿" if report.total.participants is None else f"{report.total.participants}人"
    note = f"参加者 {participants}（うち年齢不明 {unknown}）"
    if report.suppressed_any:
        note += "　※5人未満の区分などは秘匿"
    if report.perturbed:
        note += "　※人数は小さく調整済み（最大±2）"
    parts.append(f'<text x="{left}" y="{height - 30}" font-size="12">{escape(note)}</text>')
    parts.append("</svg>")
    return "\n".join(parts).encode("utf-8")


ACTIVITY_HEADERS = ["月", "会場", "開催回数（コマ）", "うちスマホ教室", "うち相談会", "参加者数（延べ）",
                    "1コマあたり参加者数", "参加者1人のコマ", "参加者0人のコマ", "基本的な講座",
                    "応用的な講座", "支援員（延べ）", "うち認定支援員", "1コマあたり支援員数"]


def activity_csv(rows: list[ActivityRow], total: ActivityRow, date_from: object,
                 date_to: object) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([f"デジタル活用支援 実施状況 {date_from}〜{date_to}"])
    writer.writerow(ACTIVITY_HEADERS)
    for row in [*rows, total]:
        writer.writerow([row.month, safe_cell(row.venue_name), row.sessions, row.classes, row.help_sessions,
                         _number(row.attendees), _number(row.attendees_per_session),
                         _number(row.single_attendee_sessions), _number(row.empty_sessions),
                         row.basic_classes,
                         row.applied_classes, row.supporters, row.certified_supporters,
                         _number(row.supporters_per_session)])
    if any(row.attendees is None for row in [*rows, total]):
        writer.writerow(["※参加者数が5人未満の行（と、ほかから計算できてしまう行）は、参加者数と"
                         "参加者1人・0人のコマ数を秘匿しています。"])
    if total.perturbed:
        writer.writerow([perturbed_note("参加者数と参加者1人・0人のコマ数")])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
