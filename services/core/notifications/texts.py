"""The messages, in Indonesian: one template per kind, all in this one file so they can
be read and corrected together. Each names what happened, the SOP, the step, the
instance and its deadline in the satker's local time, and links to the instance."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

MONTHS = (
    "Januari", "Februari", "Maret", "April", "Mei", "Juni",
    "Juli", "Agustus", "September", "Oktober", "November", "Desember",
)  # fmt: skip
# Indonesia's three time zones by their Indonesian names.
ZONE_NAMES = {
    "Asia/Jakarta": "WIB",
    "Asia/Pontianak": "WIB",
    "Asia/Makassar": "WITA",
    "Asia/Jayapura": "WIT",
}


def local_time(instant: datetime, timezone: str) -> str:
    """`2 Desember 2026, 14.30 WIB`: how the office writes a time."""
    local = instant.astimezone(ZoneInfo(timezone))
    zone = ZONE_NAMES.get(timezone) or local.tzname() or timezone
    return (
        f"{local.day} {MONTHS[local.month - 1]} {local.year}, "
        f"{local.hour:02d}.{local.minute:02d} {zone}"
    )


def local_date(day: str) -> str:
    """`2026-12-02` -> `2 Desember 2026`."""
    year, month, date = (int(part) for part in day.split("-"))
    return f"{date} {MONTHS[month - 1]} {year}"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str

    def html(self) -> str:
        """The e-mail's HTML part: the same text, escaped, links made clickable."""
        lines = []
        for line in self.text.split("\n"):
            escaped = html.escape(line)
            if line.startswith(("http://", "https://")):
                escaped = f'<a href="{escaped}">{escaped}</a>'
            lines.append(escaped)
        return "<html><body><p>" + "<br>\n".join(lines) + "</p></body></html>\n"


@dataclass(frozen=True)
class TaskFacts:
    """What a message about a task says of it."""

    sop_number: int
    sop_title: str
    step_number: int
    activity: str
    instance_title: str
    due_at: datetime | None
    timezone: str
    link: str


_TASK_OPENINGS = {
    "task_opened": ("Tugas baru", "Ada tugas baru untuk Anda."),
    "task_assigned": ("Tugas diserahkan kepada Anda", "Sebuah tugas diserahkan kepada Anda."),
    "due_soon": ("Segera jatuh tempo", "Batas waktu tugas ini segera habis."),
    "overdue": ("Terlambat", "Batas waktu tugas ini sudah lewat."),
    "flagged": (
        "Perlu ditangani",
        "Langkah otomatis tidak berhasil dijalankan; mohon dikerjakan secara manual.",
    ),
}


def _task_lines(facts: TaskFacts) -> list[str]:
    deadline = local_time(facts.due_at, facts.timezone) if facts.due_at is not None else "tidak ada"
    return [
        f"SOP: {facts.sop_number:02d} {facts.sop_title}",
        f"Langkah: {facts.step_number}. {facts.activity}",
        f"Perihal: {facts.instance_title}",
        f"Batas waktu: {deadline}",
        "",
        "Buka:",
        facts.link,
    ]


def task_message(kind: str, facts: TaskFacts, data: Mapping[str, Any]) -> Message:
    if kind == "escalated":
        level = data.get("level", 1)
        headline = f"Eskalasi tingkat {level}"
        opening = (
            f"Sebuah tugas melewati batas waktunya dan dieskalasikan kepada Anda (tingkat {level})."
        )
    else:
        headline, opening = _TASK_OPENINGS[kind]
    lines = [opening, ""]
    if kind == "flagged" and data.get("reason"):
        lines += [f"Alasan: {data['reason']}", ""]
    lines += _task_lines(facts)
    return Message(
        f"[Alur] {headline}: {facts.activity[:120]} — {facts.instance_title[:80]}", _join(lines)
    )


def operations_message(
    kind: str, data: Mapping[str, Any], *, satker_name: str, timezone: str, link: str | None
) -> Message:
    """Messages about the court's services (backups, websites, renewals) and its SOPs' reviews."""
    if kind == "backup_failed":
        day = local_date(str(data["day"]))
        reasons: Sequence[Mapping[str, Any]] = data.get("reasons") or []
        subject = f"Pemeriksaan backup SIPP gagal: {day}"
        lines = [f"Pemeriksaan backup dan sinkronisasi SIPP {satker_name} tanggal {day} gagal:"]
        lines += [f"- {reason.get('message', reason.get('code', ''))}" for reason in reasons]
    elif kind == "monitor_down":
        subject = f"Situs tidak dapat diakses: {data['url']}"
        why = data.get("error") or (
            f"HTTP {data['status_code']}" if data.get("status_code") else data.get("reason")
        )
        checked = local_time(datetime.fromisoformat(str(data["checked_at"])), timezone)
        lines = [f"Situs {data['url']} tidak dapat diakses sejak {checked}.", f"Sebab: {why}"]
    elif kind == "monitor_up":
        subject = f"Situs kembali normal: {data['url']}"
        checked = local_time(datetime.fromisoformat(str(data["checked_at"])), timezone)
        lines = [f"Situs {data['url']} dapat diakses kembali ({checked})."]
    elif kind == "certificate_expiring":
        subject = f"Sertifikat TLS {data['url']} berakhir dalam {data['days_left']} hari"
        until = local_time(datetime.fromisoformat(str(data["not_after"])), timezone)
        lines = [f"Sertifikat TLS situs {data['url']} berlaku sampai {until}; mohon diperbarui."]
    elif kind == "domain_expiring":
        subject = f"Domain {data['domain']} berakhir dalam {data['days_left']} hari"
        until = local_time(datetime.fromisoformat(str(data["expires_at"])), timezone)
        lines = [f"Pendaftaran domain {data['domain']} berakhir {until}; mohon diperpanjang."]
    elif kind == "renewal_due":
        subject = f"Perpanjangan {data['name']} jatuh tempo {local_date(str(data['due_date']))}"
        lines = [
            f"Layanan {data['name']} ({data['service']}"
            + (f", {data['provider']}" if data.get("provider") else "")
            + f") jatuh tempo {local_date(str(data['due_date']))}, {data['days_left']} hari lagi.",
            "SOP 05 sudah dimulai untuk perpanjangannya.",
        ]
    elif kind == "review_due":
        subject = (
            f"Reviu SOP {data['sop_number']:02d} {data['sop_title']} "
            f"jatuh tempo {local_date(str(data['due_on']))}"
        )
        percent = data.get("on_time_percent")
        lines = [
            f"SOP {data['sop_number']:02d} {data['sop_title']} (versi {data['version']}) "
            f"{satker_name} perlu direviu: tetap digunakan atau direvisi.",
            "Ketepatan waktu sejak reviu terakhir: "
            + (
                "belum ada tugas yang dinilai."
                if percent is None
                else f"{float(percent):.1f} %.".replace(".", ",", 1)
            ),
        ]
    else:  # pragma: no cover - kinds.OPERATIONS_KINDS names every kind above
        raise ValueError(f"no template for {kind}")
    if link:
        lines += ["", "Buka:", link]
    return Message(f"[Alur] {subject}", _join(lines))


def digest_message(items: Sequence[tuple[str, str]], *, day: str) -> Message:
    """The daily digest: several due-soon messages (subject, text) as one."""
    lines = [f"Tugas yang segera jatuh tempo ({len(items)}):", ""]
    for number, (subject, text) in enumerate(items, start=1):
        lines.append(f"{number}. {subject.removeprefix('[Alur] ')}")
        lines += [f"   {line}" if line else "" for line in text.split("\n")[2:]]
        lines.append("")
    return Message(
        f"[Alur] Ringkasan harian {day}: {len(items)} tugas segera jatuh tempo", _join(lines)
    )


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines).rstrip() + "\n\n-- \nAlur, pesan otomatis. Jangan membalas pesan ini.\n"
