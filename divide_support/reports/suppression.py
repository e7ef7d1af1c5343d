"""Small-cell suppression: planners never see a count of 1-4 people, nor one they could work
out from the others."""

from __future__ import annotations

SUPPRESS_BELOW = 5  # planners never see a cell of 1-4 people


def _small(value: int | None) -> bool:
    return value is not None and 0 < value < SUPPRESS_BELOW


def suppress_columns(rows: list, fields: tuple[str, ...], total: object | None = None) -> bool:
    """Hide every count of 1-4, column by column, so that none can be worked out: the
    column's total when it is 1-4 itself, and a column never has exactly one hidden cell
    beside a shown total (the next smallest goes with it, or the total when there is no
    other). Works on any objects with those attributes; True if anything was hidden."""
    hidden_any = False
    for name in fields:
        hidden = [r for r in rows if getattr(r, name) is None or _small(getattr(r, name))]
        for row in hidden:
            setattr(row, name, None)
        if total is not None and _small(getattr(total, name)):
            setattr(total, name, None)
            hidden_any = True
        if len(hidden) == 1 and not (total is not None and getattr(total, name) is None):
            others = [r for r in rows if r not in hidden and (getattr(r, name) or 0) > 0]
            if others:
                setattr(min(others, key=lambda r: getattr(r, name)), name, None)
            elif total is not None:
                setattr(total, name, None)
        hidden_any = hidden_any or bool(hidden)
    return hidden_any
