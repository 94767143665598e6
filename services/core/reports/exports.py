"""Reports as tables (see `tables`): the columns machines read in CSV, the Indonesian
headings people read in XLSX."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from services.core.reports.indicators import SopIndicator
from services.core.reports.performance import Figures, PerformanceReport
from services.core.reports.tables import Cell, Table

_FIGURES = [
    ("tasks", "Jumlah tugas"),
    ("on_time", "Tepat waktu"),
    ("late", "Terlambat"),
    ("without_standard", "Tanpa standar waktu"),
    ("open", "Masih terbuka"),
    ("open_overdue", "Terbuka, lewat waktu"),
    ("cancelled", "Dibatalkan"),
    ("on_time_percent", "Persentase tepat waktu (%)"),
    ("median_seconds", "Median durasi (detik kerja)"),
    ("p90_seconds", "Persentil 90 durasi (detik kerja)"),
    ("median_standard_percent", "Median durasi terhadap standar (%)"),
    ("p90_standard_percent", "Persentil 90 durasi terhadap standar (%)"),
    ("escalations", "Eskalasi per tingkat"),
]


def _figures(figures: Figures) -> list[Cell]:
    escalations = ", ".join(
        f"{level}:{count}" for level, count in sorted(figures.escalations.items())
    )
    return [
        figures.tasks,
        figures.on_time,
        figures.late,
        figures.without_standard,
        figures.open,
        figures.open_overdue,
        figures.cancelled,
        figures.on_time_percent,
        figures.median_seconds,
        figures.p90_seconds,
        figures.median_standard_percent,
        figures.p90_standard_percent,
        escalations or None,
    ]


_STEP_COLUMNS = [
    ("sop_number", "No. SOP"),
    ("sop", "Kode SOP"),
    ("sop_title", "Nama SOP"),
    ("instances", "Jumlah pelaksanaan"),
    ("step_number", "No. langkah"),
    ("step", "Langkah"),
    ("activity", "Kegiatan"),
    ("lane", "Pelaksana"),
    ("standard", "Standar waktu"),
    *_FIGURES,
]


def _late_columns(timezone: str) -> list[tuple[str, str]]:
    return [
        ("instance_id", "ID pelaksanaan"),
        ("title", "Judul"),
        ("sop", "Kode SOP"),
        ("step", "Langkah"),
        ("due_at", f"Batas waktu ({timezone})"),
        ("completed_at", f"Selesai ({timezone})"),
        ("late_seconds", "Terlambat (detik kerja)"),
        ("reasons", "Alasan"),
    ]


def performance_tables(report: PerformanceReport, timezone: str) -> list[Table]:
    zone = ZoneInfo(timezone)
    rows: list[list[Cell]] = []
    for sop in report.sops:
        head: list[Cell] = [sop.number, sop.code, sop.title]
        rows.append([*head, sop.instances, None, None, None, None, None, *_figures(sop.figures)])
        for step in sop.steps:
            where = [step.number, step.step_id, step.activity, step.lane, step.standard]
            rows.append([*head, None, *where, *_figures(step.figures)])
    late_rows: list[list[Cell]] = [
        [
            task.instance_id,
            task.title,
            task.sop,
            task.step_id,
            task.due_at.astimezone(zone),
            task.completed_at.astimezone(zone) if task.completed_at else None,
            task.late_seconds,
            " | ".join(task.reasons) or None,
        ]
        for task in report.late_tasks
    ]
    late_columns = _late_columns(timezone)
    return [
        Table(
            sheet="Kinerja SOP",
            columns=[name for name, _ in _STEP_COLUMNS],
            headings=[label for _, label in _STEP_COLUMNS],
            rows=rows,
        ),
        Table(
            sheet="Tugas terlambat",
            columns=[name for name, _ in late_columns],
            headings=[label for _, label in late_columns],
            rows=late_rows,
        ),
    ]


def indicator_tables(found: list[SopIndicator], year: int) -> list[Table]:
    """One row per SOP and month, then the year (`month` empty)."""
    columns = [
        ("sop_number", "No. SOP"),
        ("sop", "Kode SOP"),
        ("sop_title", "Nama SOP"),
        ("year", "Tahun"),
        ("month", "Bulan"),
        ("completed", "Tugas selesai"),
        ("on_time", "Tepat waktu"),
        ("target_percent", "Target (%)"),
        ("realisation_percent", "Realisasi (%)"),
        ("achievement_percent", "Capaian (%)"),
    ]
    rows: list[list[Cell]] = []
    for indicator in found:
        head: list[Cell] = [indicator.number, indicator.code, indicator.title, year]
        for month, tally in enumerate(indicator.months, start=1):
            rows.append([
                *head, month, tally.completed, tally.on_time, indicator.target,
                tally.realisation, tally.achievement(indicator.target),
            ])  # fmt: skip
        tally = indicator.year
        rows.append([
            *head, None, tally.completed, tally.on_time, indicator.target,
            tally.realisation, tally.achievement(indicator.target),
        ])  # fmt: skip
    table = Table(
        sheet=f"Indikator {year}",
        columns=[name for name, _ in columns],
        headings=[label for _, label in columns],
        rows=rows,
    )
    return [table]
