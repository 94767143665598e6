"""Dates as Indonesian papers write them (`31 Desember 2026`): shared by the reports and
the SOP document, so it depends on no feature."""

from __future__ import annotations

from datetime import date

MONTHS_ID = (
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
)


def long_date(day: date) -> str:
    """`31 Desember 2026`."""
    return f"{day.day} {MONTHS_ID[day.month - 1]} {day.year}"
