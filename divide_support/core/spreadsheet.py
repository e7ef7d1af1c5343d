"""CSV for spreadsheet software (Excel is what municipal offices open files with)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

BOM = "\ufeff"  # UTF-8 with a BOM: spreadsheet software then reads the Japanese text right


def safe_cell(value: str) -> str:
    """Text typed by people never starts a spreadsheet formula (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(list(values))
    return buffer.getvalue()
