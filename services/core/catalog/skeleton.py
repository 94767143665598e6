"""`alur catalog new`: a commented skeleton of a SOP file that validates as it is, for a
court adding one of its own SOPs to the catalog. Every placeholder says `TODO`."""

from __future__ import annotations

import json
import re

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _quoted(text: str) -> str:
    # JSON strings are YAML strings: the title may hold colons, quotes, anything.
    return json.dumps(text, ensure_ascii=False)


def skeleton(code: str, number: int, title: str, lanes: list[str]) -> str:
    """The YAML text of a new SOP `code` with one step per lane, in order."""
    first, last = lanes[0], lanes[-1]
    steps = []
    for index, lane in enumerate(lanes, start=1):
        step_id = f"langkah_{index}"
        following = f"\n    next: langkah_{index + 1}" if index < len(lanes) else ""
        steps.append(
            f"""  - id: {step_id}
    number: {index}
    activity: "TODO: kegiatan langkah {index} (as the SOP writes it)"
    lane: {lane}
    kind: task  # task | decision (with outcomes) | automated (with job) | external
    requirements:
      - "TODO: kelengkapan"
    output: "TODO: output"
    # The time standard as written, and its reading (ISO 8601 durations; basis working
    # or calendar): see docs/time-standards.md.
    time_standard: {{source_text: 1 hari, min: P1D, max: P1D, basis: working}}{following}"""
        )
    body = "\n".join(steps)
    return f"""# A new SOP for the catalog: replace every TODO, then run `alur catalog validate`.
# The fields follow the SOP document's sections (see docs/catalog.md); lanes are role ids
# of roles.yaml; raise `version` for every later change of this file.
code: {code}
number: {number}
title: {_quoted(title)}
version: 1
legal_basis:  # A. Dasar Hukum
  - "TODO: dasar hukum"
related:  # B. Keterkaitan
  - "TODO: SOP terkait"
warning: "TODO: peringatan (C)"
qualifications:  # D. Kualifikasi Pelaksana
  - "TODO: kualifikasi"
equipment:  # E. Peralatan/Perlengkapan
  - "TODO: peralatan"
records:  # F. Pencatatan dan Pendataan
  - "TODO: catatan"
# G. The flow: one column per lane, from {first} to {last}.
lanes: [{", ".join(lanes)}]
entry_points: [langkah_1]
steps:
{body}
"""
