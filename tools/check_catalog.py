#!/usr/bin/env python3
"""Check the requirement catalog against the RFC 5454 text.

Fails when a normative keyword (MUST, SHOULD, MAY, ...) of RFC 5454 is not inside the quote of
some catalog entry of the same section, when a quoted entry's text is not in the RFC, or when
an entry's level is not a keyword of its own quote.

    python tools/check_catalog.py [--catalog FILE] [--rfc FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance import rfctext  # noqa: E402
from conformance.catalog import CatalogError, load_catalog  # noqa: E402

DEFAULT_RFC = ROOT / "fixtures" / "rfc" / "rfc5454.txt"


def check(catalog, rfc_text: str) -> list[str]:
    """Problems found, as lines; empty when the catalog and the RFC agree."""
    problems: list[str] = []
    all_sentences = rfctext.sentences(rfc_text)
    by_section: dict[str, list] = {}
    for s in all_sentences:
        by_section.setdefault(s.section, []).append(s)

    # Where each quote stands: (sentence, start, end) spans.
    covered: dict[int, list[tuple[int, int]]] = {}
    for req in catalog.requirements:
        if req.rfc != 5454 or not req.quoted:
            continue
        quote = rfctext.normalize(req.text)
        spans = []
        for s in by_section.get(req.section, []):
            start = s.text.find(quote)
            while start >= 0:
                spans.append((s, start, start + len(quote)))
                start = s.text.find(quote, start + 1)
        if not spans:
            problems.append(f"{req.id} (line {req.line}): quoted text is not in RFC 5454 "
                            f"§{req.section}: {quote!r}")
            continue
        keywords = {k for _, k in rfctext.Sentence(req.section, quote, 0).keywords}
        if req.level != "DEFINITION" and req.level not in keywords:
            problems.append(f"{req.id} (line {req.line}): level {req.level} is not a keyword of "
                            f"its quote (found {sorted(keywords) or 'none'})")
        for s, start, end in spans:
            covered.setdefault((s.section, s.line, s.text), []).append((start, end))

    for s in rfctext.normative_sentences(rfc_text):
        spans = covered.get((s.section, s.line, s.text), [])
        for pos, keyword in s.keywords:
            if not any(start <= pos < end for start, end in spans):
                context = s.text[max(0, pos - 60):pos + 60]
                problems.append(f"RFC 5454 §{s.section} (line {s.line}): {keyword} is in no "
                                f"catalog entry: ...{context}...")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default=None)
    parser.add_argument("--rfc", default=str(DEFAULT_RFC))
    args = parser.parse_args(argv)
    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        print(f"check_catalog: {exc}", file=sys.stderr)
        return 2
    rfc = rfctext.load(args.rfc)
    problems = check(catalog, rfc)
    normative = rfctext.normative_sentences(rfc)
    keywords = sum(len(s.keywords) for s in normative)
    if problems:
        print(f"check_catalog: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"check_catalog: OK: {len(normative)} normative sentences ({keywords} keywords) of "
          f"RFC 5454 covered by {len(catalog.requirements)} catalog entries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
