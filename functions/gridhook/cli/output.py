"""How commands print what they list: an aligned table for people, or JSON / CSV (CSV by
gridhook's one convention, ``gridhook.csv_format``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from gridhook import csv_format

__all__ = ["write_csv", "write_json", "write_table"]


def write_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    out: TextIO | None = None,
    *,
    headers: Sequence[str] | None = None,
) -> None:
    """Left-aligned columns two spaces apart, headed by ``headers`` (default: the column
    names in capitals)."""
    out = out or sys.stdout
    heads = list(headers) if headers is not None else [c.upper() for c in columns]
    cells = [[str(row[c]) for c in columns] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(heads)]
    for line in [heads, *cells]:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
        out.write("\n")


def write_csv(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> None:
    csv_format.write(out or sys.stdout, columns, rows)


def write_json(items: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(items, out, indent=2, ensure_ascii=False)
    out.write("\n")
