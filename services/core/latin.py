"""Text for the core PDF fonts (Helvetica: Latin-1), which Indonesian needs; the few
characters beyond it that SOP texts and names carry (dashes, curly quotes, ellipses)
are written as their plain forms, and anything else as `?`."""

from __future__ import annotations

_PLAIN = str.maketrans(
    {
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u00a0": " ",
        "\u2022": "-",
        "\u2264": "<=",
        "\u2265": ">=",
        "\u00d7": "x",
    }
)


def latin(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")
