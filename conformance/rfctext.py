"""Normative sentences of an RFC text: page furniture removed, lines joined, sentences split.

Used by the catalog check (tools/check_catalog.py) to prove the requirement catalog quotes
every RFC 2119 keyword sentence of RFC 5454 and nothing that is not in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

KEYWORDS = ("MUST NOT", "SHALL NOT", "SHOULD NOT", "MUST", "REQUIRED", "SHALL", "SHOULD",
            "RECOMMENDED", "MAY", "OPTIONAL")
KEYWORD_RE = re.compile(r"\b(MUST NOT|SHALL NOT|SHOULD NOT|MUST|REQUIRED|SHALL|SHOULD|"
                        r"RECOMMENDED|MAY|OPTIONAL)\b")
_PAGE_FOOTER = re.compile(r"^\S.*\[Page \d+\]\s*$")
_PAGE_HEADER = re.compile(r"^RFC \d+ .* \d{4}\s*$")
_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.\s+\S")
_FIGURE = re.compile(r"^\s+[|+]|^\s+\d( \d)+|^\s+0\s+1\s+2")
# The Requirements Notation paragraph lists the keywords; it states no requirement itself.
_NOTATION_SECTION = "1.1"
_SENTENCE_END = re.compile(r"(?<=[.])\s+(?=[A-Z\[(\"0-9])")


@dataclass(frozen=True)
class Sentence:
    section: str
    text: str
    line: int  # 1-based line of the text file where the sentence starts

    @property
    def keywords(self) -> list[tuple[int, str]]:
        return [(m.start(), m.group(1)) for m in KEYWORD_RE.finditer(self.text)]


def normalize(text: str) -> str:
    """Whitespace folded to single spaces; used on both the RFC and the catalog quotes."""
    return " ".join(text.split())


def _paragraph_lines(lines: list[str]):
    """(section, line number, text) of prose lines, headings and figures dropped."""
    section = "0"
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if not line.strip() or _PAGE_FOOTER.match(line) or _PAGE_HEADER.match(line):
            continue
        heading = _HEADING.match(line)
        if heading and not line.rstrip().endswith("."):
            section = heading.group(1)
            yield section, number, None  # a heading ends the paragraph before it
            continue
        if _FIGURE.match(line):
            yield section, number, None
            continue
        yield section, number, line.strip()


def sentences(text: str) -> list[Sentence]:
    """Every sentence of the RFC body, with the section it stands in."""
    out: list[Sentence] = []
    buf: list[str] = []
    start = (None, 0)

    def flush():
        if buf:
            joined = ""
            for part in buf:
                if joined.endswith("-") and joined[-2:-1].isalpha() and part[:1].isalpha():
                    joined += part  # a word hyphenated across lines ("full-" "functionality")
                else:
                    joined = f"{joined} {part}" if joined else part
            pieces = _SENTENCE_END.split(joined)
            for piece in pieces:
                out.append(Sentence(start[0], piece.strip(), start[1]))
            buf.clear()

    for section, number, line in _paragraph_lines(text.splitlines()):
        if line is None:
            flush()
            continue
        # Short lines without closing punctuation are labels ("Type", "Length", "18", figure
        # titles): each stands alone, so field descriptions start a sentence of their own.
        is_label = len(line) < 45 and not line.endswith((".", ",", ";", ":", "-"))
        if is_label:
            flush()
            start = (section, number)
            buf.append(line)
            flush()
            continue
        if not buf:
            start = (section, number)
        buf.append(line)
        if line.endswith("."):
            flush()
    flush()
    return out


def normative_sentences(text: str) -> list[Sentence]:
    return [s for s in sentences(text)
            if KEYWORD_RE.search(s.text) and s.section != _NOTATION_SECTION
            and not s.section.startswith("7")]


def load(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8")
