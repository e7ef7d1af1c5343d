"""The days a municipal facility is closed: national holidays and the year-end closure.

A weekly series of classes skips them (scheduling), and automated calls are never placed on
them. The holidays come from jpholiday (maintained with each year's Cabinet Office table,
substitute holidays 振替休日 and citizens' holidays 国民の休日 included), not from a table
kept here.
"""

from __future__ import annotations

from datetime import date

import jpholiday

YEAR_END_CLOSURE = "年末年始"  # 12/29-1/3, when community centres and city offices close


def closed_day_reason(day: date) -> str | None:
    """Why `day` is a closed day (the holiday's name, or 年末年始), or None."""
    holiday = jpholiday.is_holiday_name(day)
    if holiday:
        return holiday
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return YEAR_END_CLOSURE
    return None
