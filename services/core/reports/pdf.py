"""Reports as PDF, in Indonesian, on A4 (fpdf2): the Monev SOP form, the record of one
instance and the index of an evidence pack.

Text goes through `services.core.latin` for the core PDF fonts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.core.latin import latin


class _Document(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = latin(footer_text)
        self.set_margins(20, 18, 20)
        self.set_auto_page_break(auto=True, margin=18)
        self.alias_nb_pages()
        self.set_creator("Alur")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.set_text_color(90)
        self.cell(0, 5, f"{self.footer_text} - halaman {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0)

    def heading(self, text: str, size: float = 13) -> None:
        self.set_font("Helvetica", "B", size)
        self.multi_cell(0, size * 0.5, latin(text), align="C",
                        new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip

    def subheading(self, text: str) -> None:
        self.ln(2)
        self.set_font("Helvetica", "B", 10.5)
        self.multi_cell(0, 5.5, latin(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def line_of(self, text: str, *, bold: bool = False, size: float = 9.5) -> None:
        self.set_font("Helvetica", "B" if bold else "", size)
        self.multi_cell(0, size * 0.5, latin(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def item(self, text: str, size: float = 9.5) -> None:
        self.set_font("Helvetica", "", size)
        self.set_x(self.l_margin + 4)
        self.multi_cell(
            0, size * 0.5, latin(f"- {text}"), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def rows(self, headings: Sequence[str], rows: Sequence[Sequence[str]],
             widths: Sequence[float]) -> None:  # fmt: skip
        self.set_font("Helvetica", size=8)
        with self.table(col_widths=tuple(widths), text_align="LEFT", line_height=4) as table:
            head = table.row()
            for heading in headings:
                head.cell(latin(heading))
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(latin(value))

    def bytes(self) -> bytes:
        return bytes(self.output())


# --- the Monev SOP form ---------------------------------------------------------------


@dataclass(frozen=True)
class Signatory:
    office: str
    name: str | None


@dataclass
class MonevSection:
    number: int | None
    code: str
    title: str
    instances: int
    tasks: int
    on_time: int
    late: int
    open: int
    on_time_percent: str
    deviations: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)


@dataclass
class MonevForm:
    satker_name: str
    period_label: str
    period_range: str
    place_date: str
    generated: str
    sections: list[MonevSection]
    signatories: tuple[Signatory, Signatory]


def monev_pdf(form: MonevForm) -> bytes:
    doc = _Document(f"Monev SOP {form.satker_name} {form.period_label}")
    doc.set_title(latin(f"Monitoring dan Evaluasi SOP {form.period_label}"))
    doc.add_page()
    doc.heading("FORMULIR MONITORING DAN EVALUASI PELAKSANAAN SOP")
    doc.heading(form.satker_name.upper(), size=11)
    doc.ln(2)
    doc.line_of(f"Periode: {form.period_label} ({form.period_range})")
    doc.line_of(f"Disusun dari catatan Alur pada {form.generated}", size=8)
    for section in form.sections:
        number = f"SOP {section.number:02d}" if section.number is not None else "SOP"
        doc.subheading(f"{number}. {section.title} ({section.code})")
        doc.line_of(
            f"Penerapan: {section.instances} kali dilaksanakan, {section.tasks} tugas dalam "
            "periode ini."
        )
        doc.line_of(
            f"Ketepatan waktu: {section.on_time} tepat waktu, {section.late} terlambat, "
            f"{section.open} masih berjalan; tepat waktu {section.on_time_percent}."
        )
        doc.line_of("Penyimpangan yang menonjol:", bold=True)
        for text in section.deviations or ["Tidak ada penyimpangan tercatat."]:
            doc.item(text)
        doc.line_of("Tindak lanjut:", bold=True)
        for text in section.follow_ups or ["Belum ada tindak lanjut tercatat."]:
            doc.item(text)
    _signatures(doc, form.place_date, form.signatories)
    return doc.bytes()


def _signatures(doc: _Document, place_date: str, signatories: Sequence[Signatory]) -> None:
    if doc.get_y() > doc.h - 70:
        doc.add_page()
    doc.ln(8)
    width = (doc.w - doc.l_margin - doc.r_margin) / 2
    doc.set_font("Helvetica", size=9.5)
    doc.set_x(doc.l_margin + width)
    doc.cell(width, 5, latin(place_date), align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    top = doc.get_y()
    for index, signatory in enumerate(signatories):
        x = doc.l_margin + index * width
        doc.set_xy(x, top)
        doc.set_font("Helvetica", "B", 9.5)
        doc.multi_cell(width, 5, latin(signatory.office), align="C")
        doc.set_xy(x, top + 30)
        doc.set_font("Helvetica", "BU" if signatory.name else "", 9.5)
        doc.cell(width, 5, latin(signatory.name or "(....................................)"),
                 align="C")  # fmt: skip
    doc.set_y(top + 40)


# --- the record of one instance, and the index of an evidence pack ----------------------


@dataclass
class RecordEvent:
    when: str
    what: str
    who: str


@dataclass
class RecordTask:
    step: str
    lane: str
    opened: str
    done: str
    took: str
    standard: str
    verdict: str


@dataclass
class RecordFile:
    name: str
    media_type: str
    size: int
    sha256: str
    path: str


@dataclass
class InstanceRecordDoc:
    sop: str
    title: str
    instance_id: str
    satker_name: str
    started: str
    ended: str
    status: str
    audit: str
    tasks: list[RecordTask]
    events: list[RecordEvent]
    files: list[RecordFile]


def instance_record_pdf(record: InstanceRecordDoc) -> bytes:
    doc = _Document(f"Rekaman pelaksanaan {record.instance_id}")
    doc.set_title(latin(record.title))
    doc.add_page()
    doc.heading("REKAMAN PELAKSANAAN SOP", size=12)
    doc.heading(record.sop, size=10)
    doc.ln(2)
    for label, value in (
        ("Judul", record.title),
        ("Satker", record.satker_name),
        ("ID", record.instance_id),
        ("Mulai", record.started),
        ("Selesai", record.ended),
        ("Status", record.status),
        ("Verifikasi jejak audit", record.audit),
    ):
        doc.line_of(f"{label}: {value}")
    doc.subheading("Langkah dan waktu terhadap standar")
    doc.rows(
        ["Langkah", "Pelaksana", "Dibuka", "Selesai", "Durasi", "Standar", "Hasil"],
        [[t.step, t.lane, t.opened, t.done, t.took, t.standard, t.verdict] for t in record.tasks],
        [40, 22, 24, 24, 20, 20, 20],
    )
    doc.subheading("Bukti")
    if record.files:
        doc.rows(
            ["Berkas", "Jenis", "Ukuran (bita)", "SHA-256"],
            [[f.path, f.media_type, str(f.size), f.sha256] for f in record.files],
            [50, 30, 20, 70],
        )
    else:
        doc.line_of("Tidak ada berkas bukti.")
    doc.subheading("Jejak audit")
    doc.rows(
        ["Waktu", "Peristiwa", "Oleh"],
        [[e.when, e.what, e.who] for e in record.events],
        [40, 90, 40],
    )
    return doc.bytes()


@dataclass
class PackEntry:
    folder: str
    sop: str
    instances: int
    files: int


def pack_index_pdf(
    satker_name: str, period: str, generated: str, entries: Sequence[PackEntry], total_files: int
) -> bytes:
    doc = _Document(f"Paket bukti AMPUH {satker_name} {period}")
    doc.set_title(latin(f"Paket bukti AMPUH {period}"))
    doc.add_page()
    doc.heading("PAKET BUKTI AKREDITASI PENJAMINAN MUTU (AMPUH)")
    doc.heading(satker_name.upper(), size=11)
    doc.ln(2)
    doc.line_of(f"Periode: {period}")
    doc.line_of(f"Disusun oleh Alur pada {generated}", size=8)
    doc.line_of(
        "Setiap berkas dalam paket ini tercantum dengan SHA-256-nya di MANIFEST.sha256; "
        "periksa dengan: sha256sum -c MANIFEST.sha256",
        size=8,
    )
    doc.subheading("Daftar isi")
    doc.rows(
        ["Folder", "SOP", "Pelaksanaan selesai", "Berkas bukti"],
        [[e.folder, e.sop, str(e.instances), str(e.files)] for e in entries],
        [45, 85, 20, 20],
    )
    doc.line_of(f"Jumlah berkas bukti: {total_files}")
    return doc.bytes()
