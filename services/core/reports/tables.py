"""Reports as tables: CSV (the first table, for machines) and XLSX (every table, a
sheet each, for people)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

Cell = str | int | float | datetime | None

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Table:
    sheet: str
    columns: Sequence[str]
    headings: Sequence[str]
    rows: Sequence[Sequence[Cell]]


def _plain(value: Cell) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_plain(value) for value in row])
    return out.getvalue().encode()


def to_xlsx(tables: Sequence[Table]) -> bytes:
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for table in tables:
        sheet = book.create_sheet(table.sheet[:31])
        header = []
        for heading in table.headings:
            cell = WriteOnlyCell(sheet, value=heading)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        for row in table.rows:
            # Excel keeps no time zone: instants go as UTC without one, said in the heading.
            sheet.append(
                [
                    value.replace(tzinfo=None) if isinstance(value, datetime) else value
                    for value in row
                ]
            )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
