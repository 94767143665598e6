"""The SOP as the official document (the PermenPAN-RB layout courts print and sign):
an identity block, sections A-G, then the flow table with one column per performer,
the flowchart symbol of each step drawn in its performer's column, and the quality
standard (requirements, time as the source writes it, output) with remarks.

Two renderings of one model: HTML (a page a browser prints) and PDF (A4 landscape,
fpdf2). Symbols: a terminator for where the procedure starts and ends, a rectangle for
an activity, a diamond for a decision; consecutive steps are joined by arrows, a jump
elsewhere (a decision's branch, a step that returns) by a numbered connector circle.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal, cast

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.core.dates import long_date
from services.core.engine.definition import Role, SopDefinition, Step
from services.core.latin import latin

Symbol = Literal["terminator", "process", "decision"]
ILLEGIBLE = "tidak terbaca"
SECTIONS = (
    ("A", "Dasar Hukum", "legal_basis"),
    ("B", "Keterkaitan", "related"),
    ("C", "Peringatan", "warning"),
    ("D", "Kualifikasi Pelaksana", "qualifications"),
    ("E", "Peralatan/Perlengkapan", "equipment"),
    ("F", "Pencatatan dan Pendataan", "records"),
)


@dataclass(frozen=True)
class FlowRow:
    number: int
    activity: str
    column: int  # index of the performer's column
    symbol: Symbol
    requirements: str
    time: str
    output: str
    remarks: str
    # Where the flow goes on: the next row's number (drawn as an arrow) or others
    # (connectors), with the outcome that leads there at a decision.
    goes_to: tuple[tuple[str | None, int | None], ...]


@dataclass(frozen=True)
class Document:
    code: str
    number: int
    title: str
    version: int
    effective_date: date | None
    performers: tuple[str, ...]
    sections: tuple[tuple[str, str, tuple[str, ...]], ...]
    rows: tuple[FlowRow, ...]


def _symbol(definition: SopDefinition, step: Step) -> Symbol:
    if step.outcomes is not None:
        return "decision"
    if step.id in definition.entry_points or step.is_end:
        return "terminator"
    return "process"


def build(definition: SopDefinition, roles: Mapping[str, Role]) -> Document:
    numbers = {step.id: step.number for step in definition.steps}
    lanes = list(definition.lanes)
    rows = []
    for step in sorted(definition.steps, key=lambda s: s.number):
        goes: tuple[tuple[str | None, int | None], ...]
        if step.outcomes is not None:
            goes = tuple(
                (outcome, numbers[target] if target else None)
                for outcome, target in step.outcomes.items()
            )
        else:
            goes = ((None, numbers[step.next]),) if step.next else ()
        remarks = [
            f"{outcome}: " + (f"ke langkah {target}" if target else "selesai")
            for outcome, target in goes
            if outcome is not None
        ]
        if step.outcomes is None and step.next and numbers[step.next] != step.number + 1:
            remarks.append(f"ke langkah {numbers[step.next]}")
        standard = step.time_standard
        rows.append(
            FlowRow(
                number=step.number,
                activity=step.activity,
                column=lanes.index(step.lane) if step.lane in lanes else 0,
                symbol=_symbol(definition, step),
                requirements="; ".join(step.requirements),
                time=standard.source_text if standard else ILLEGIBLE,
                output=step.output or "",
                remarks="; ".join(remarks),
                goes_to=goes,
            )
        )
    sections = []
    for letter, heading, field in SECTIONS:
        value = getattr(definition, field)
        items = (value,) if isinstance(value, str) else tuple(value)
        sections.append((letter, heading, items))
    return Document(
        code=definition.code,
        number=definition.number,
        title=definition.title,
        version=definition.version,
        effective_date=definition.effective_date,
        performers=tuple(roles[lane].name if lane in roles else lane for lane in lanes),
        sections=tuple(sections),
        rows=tuple(rows),
    )


def _identity(document: Document) -> list[tuple[str, str]]:
    return [
        ("Nomor SOP", f"{document.number:02d} ({document.code})"),
        ("Revisi", f"versi {document.version}"),
        (
            "Tanggal pembuatan, revisi, efektif",
            long_date(document.effective_date) if document.effective_date else "-",
        ),
        ("Disahkan oleh", "-"),
        ("Nama SOP", document.title),
    ]


# --- HTML -------------------------------------------------------------------------------

_SVG = {
    "terminator": '<rect x="4" y="8" width="72" height="28" rx="14" ry="14"/>',
    "process": '<rect x="4" y="6" width="72" height="32"/>',
    "decision": '<polygon points="40,2 78,22 40,42 2,22"/>',
}
_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 11px; color: #000; }
h1 { font-size: 15px; text-align: center; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #000; padding: 3px 4px; vertical-align: top; }
th { background: #eee; }
.identity td:first-child { width: 28%; font-weight: bold; }
.lane { text-align: center; width: 90px; }
svg { width: 80px; height: 44px; fill: #fff; stroke: #000; stroke-width: 1.5; }
svg text { fill: #000; stroke: none; font-size: 12px; text-anchor: middle; }
.flow .arrow { display: block; text-align: center; line-height: 1; }
@page { size: A4 landscape; margin: 12mm; }
"""


def to_html(document: Document) -> str:
    e = html.escape
    parts = [
        '<!DOCTYPE html><html lang="id"><head><meta charset="utf-8">',
        f"<title>SOP {document.number:02d} {e(document.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>STANDAR OPERASIONAL PROSEDUR<br>{e(document.title.upper())}</h1>",
        '<table class="identity">',
    ]
    parts += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _identity(document)]
    parts.append("</table>")
    for letter, heading, items in document.sections:
        parts.append(f"<h2>{letter}. {e(heading)}</h2><ol>")
        parts += [f"<li>{e(item)}</li>" for item in items]
        parts.append("</ol>")
    parts.append('<h2>G. Uraian Prosedur</h2><table class="flow"><thead><tr>')
    parts.append('<th rowspan="2">No</th><th rowspan="2">Kegiatan</th>')
    parts.append(f'<th colspan="{len(document.performers)}">Pelaksana</th>')
    parts.append('<th colspan="3">Mutu Baku</th><th rowspan="2">Keterangan</th></tr><tr>')
    parts += [f'<th class="lane">{e(name)}</th>' for name in document.performers]
    parts.append("<th>Kelengkapan</th><th>Waktu</th><th>Output</th></tr></thead><tbody>")
    for row in document.rows:
        parts.append(f"<tr><td>{row.number}</td><td>{e(row.activity)}</td>")
        for column in range(len(document.performers)):
            if column != row.column:
                parts.append('<td class="lane"></td>')
                continue
            shape = _SVG[row.symbol] + f'<text x="40" y="27">{row.number}</text>'
            arrows = "".join(
                f'<span class="arrow">{"↓" if target == row.number + 1 else "→"}'
                f"{'' if target == row.number + 1 else f' ({target})'}"
                f"{f' {e(outcome)}' if outcome else ''}</span>"
                for outcome, target in row.goes_to
                if target is not None
            )
            parts.append(
                f'<td class="lane"><svg viewBox="0 0 80 44" role="img" '
                f'aria-label="{row.symbol} {row.number}">{shape}</svg>{arrows}</td>'
            )
        parts.append(
            f"<td>{e(row.requirements)}</td><td>{e(row.time)}</td><td>{e(row.output)}</td>"
            f"<td>{e(row.remarks)}</td></tr>"
        )
    parts.append("</tbody></table></body></html>")
    return "".join(parts)


# --- PDF --------------------------------------------------------------------------------

_LINE = 3.6  # mm per line of flow-table text


class _Sop(FPDF):
    def __init__(self, document: Document) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.document = document
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(auto=False)
        self.alias_nb_pages()
        self.set_title(latin(f"SOP {document.number:02d} {document.title}"))
        self.set_creator("Alur")

    def footer(self) -> None:
        self.set_y(-9)
        self.set_font("Helvetica", size=7)
        self.cell(0, 4, latin(f"SOP {self.document.number:02d} {self.document.title} - "
                              f"halaman {self.page_no()}/{{nb}}"), align="C")  # fmt: skip


def _widths(pdf: _Sop, performers: int) -> list[float]:
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    lane = 24.0
    fixed = 8 + lane * performers
    rest = usable - fixed
    # Kegiatan, Kelengkapan, Waktu, Output, Keterangan.
    shares = (0.30, 0.20, 0.10, 0.18, 0.22)
    return [8, rest * shares[0], *([lane] * performers), *(rest * s for s in shares[1:])]


def _lines(pdf: _Sop, text: str, width: float) -> list[str]:
    if not text:
        return []
    lines = pdf.multi_cell(width - 2, _LINE, latin(text), dry_run=True, output="LINES")
    return cast(list[str], lines)


def to_pdf(document: Document) -> bytes:
    pdf = _Sop(document)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.multi_cell(0, 6, latin(f"STANDAR OPERASIONAL PROSEDUR\n{document.title.upper()}"),
                   align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)  # fmt: skip
    pdf.ln(2)
    pdf.set_font("Helvetica", size=9)
    for key, value in _identity(document):
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(70, 5, latin(key), border=1)
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 5, latin(value), border=1, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for letter, heading, items in document.sections:
        if pdf.get_y() > pdf.h - 30:
            pdf.add_page()
        pdf.ln(1.5)
        pdf.set_font("Helvetica", "B", 9.5)
        pdf.cell(0, 5, latin(f"{letter}. {heading}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=8.5)
        for number, item in enumerate(items, start=1):
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(0, 4, latin(f"{number}. {item}"), new_x=XPos.LMARGIN,
                           new_y=YPos.NEXT)  # fmt: skip
    pdf.add_page()
    _flow_table(pdf, document)
    return bytes(pdf.output())


def _flow_header(pdf: _Sop, document: Document, widths: list[float]) -> None:
    pdf.set_font("Helvetica", "B", 9.5)
    pdf.cell(0, 5, "G. Uraian Prosedur", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "B", 7.5)
    heads = ["No", "Kegiatan", *document.performers, "Kelengkapan", "Waktu", "Output",
             "Keterangan"]  # fmt: skip
    height = max(len(_lines(pdf, head, width)) for head, width in zip(heads, widths, strict=True))
    top = pdf.get_y()
    x = pdf.l_margin
    for head, width in zip(heads, widths, strict=True):
        pdf.rect(x, top, width, height * _LINE + 2)
        pdf.set_xy(x + 1, top + 1)
        pdf.multi_cell(width - 2, _LINE, latin(head), align="C")
        x += width
    pdf.set_xy(pdf.l_margin, top + height * _LINE + 2)


def _flow_table(pdf: _Sop, document: Document) -> None:
    performers = len(document.performers)
    widths = _widths(pdf, performers)
    _flow_header(pdf, document, widths)
    pdf.set_font("Helvetica", size=7.5)
    previous: tuple[float, float] | None = None  # (x, bottom) of the last symbol
    lane_x0 = pdf.l_margin + widths[0] + widths[1]
    for row in document.rows:
        texts = [str(row.number), row.activity, *([""] * performers), row.requirements,
                 row.time, row.output, row.remarks]  # fmt: skip
        wrapped = [_lines(pdf, text, width) for text, width in zip(texts, widths, strict=True)]
        height = max(16.0, max(len(lines) for lines in wrapped) * _LINE + 2)
        continued = False
        if pdf.get_y() + height > pdf.h - 12:
            if previous is not None:
                # The flow goes on on the next page: a connector on each side of the break.
                _connector(pdf, previous[0], previous[1] + 2.5, row.number)
                continued = True
            pdf.add_page()
            _flow_header(pdf, document, widths)
            pdf.set_font("Helvetica", size=7.5)
            previous = None
        top = pdf.get_y()
        x = pdf.l_margin
        for lines, width in zip(wrapped, widths, strict=True):
            pdf.rect(x, top, width, height)
            if lines:
                pdf.set_xy(x + 1, top + 1)
                pdf.multi_cell(width - 2, _LINE, "\n".join(lines))
            x += width
        cx = lane_x0 + widths[2] * row.column + widths[2] / 2
        cy = top + height / 2
        _draw_symbol(pdf, row.symbol, cx, cy, row.number)
        if previous is not None:
            px, pbottom = previous
            pdf.line(px, pbottom, px, pbottom + 1.5)
            _arrow(pdf, px, pbottom + 1.5, cx, cy - 5)
        elif continued:
            _connector(pdf, cx, top + 3, row.number)
        targets = [target for _, target in row.goes_to if target is not None]
        previous = (cx, cy + 5) if row.number + 1 in targets else None
        for target in targets:
            if target != row.number + 1:
                _connector(pdf, cx + 9, cy, target)
        pdf.set_xy(pdf.l_margin, top + height)


def _draw_symbol(pdf: _Sop, symbol: Symbol, cx: float, cy: float, number: int) -> None:
    pdf.set_fill_color(255, 255, 255)
    if symbol == "terminator":
        pdf.rect(cx - 8, cy - 4, 16, 8, style="DF", round_corners=True, corner_radius=3.5)
    elif symbol == "decision":
        pdf.polygon([(cx, cy - 5), (cx + 8, cy), (cx, cy + 5), (cx - 8, cy)], style="DF")
    else:
        pdf.rect(cx - 8, cy - 4, 16, 8, style="DF")
    pdf.set_font("Helvetica", "B", 7)
    pdf.set_xy(cx - 8, cy - 2)
    pdf.cell(16, 4, str(number), align="C")
    pdf.set_font("Helvetica", size=7.5)


def _arrow(pdf: _Sop, x1: float, y1: float, x2: float, y2: float) -> None:
    """An elbow from (x1, y1) down and across to the top of the next symbol."""
    if abs(x1 - x2) > 0.1:
        pdf.line(x1, y1, x2, y1)
    pdf.line(x2, y1, x2, y2)
    pdf.polygon([(x2 - 1, y2 - 1.6), (x2 + 1, y2 - 1.6), (x2, y2)], style="F")


def _connector(pdf: _Sop, x: float, y: float, target: int) -> None:
    """A circle naming the step the flow goes on at (on this page or another)."""
    pdf.set_fill_color(255, 255, 255)
    pdf.circle(x=x, y=y, radius=2.4, style="DF")
    pdf.set_font("Helvetica", size=5.5)
    pdf.set_xy(x - 2.4, y - 1.5)
    pdf.cell(4.8, 3, str(target), align="C")
    pdf.set_font("Helvetica", size=7.5)
