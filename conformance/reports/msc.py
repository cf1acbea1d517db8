"""A case's sequence as an SVG message-sequence chart: one lane per node, one arrow per message
in the order the suite saw them, the messages of a step whose check failed drawn in red."""

from __future__ import annotations

from html import escape

LANE_WIDTH = 170
ROW_HEIGHT = 34
TOP = 44
MARGIN = 20
FAILED = "#cf222e"
NORMAL = "#1f2328"


def _lanes(trace: list[dict]) -> list[str]:
    lanes: list[str] = []
    for entry in trace:
        for node in (entry["from"], entry["to"]):
            if node not in lanes:
                lanes.append(node)
    return lanes


def _short(text: str, limit: int = 58) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def sequence_svg(trace: list[dict], failed_steps: set[int]) -> str:
    """The SVG markup (escaped text inside) for a trace of {from, to, what, step} entries."""
    if not trace:
        return ""
    lanes = _lanes(trace)
    x = {node: MARGIN + LANE_WIDTH // 2 + i * LANE_WIDTH for i, node in enumerate(lanes)}
    width = MARGIN * 2 + LANE_WIDTH * len(lanes)
    height = TOP + ROW_HEIGHT * len(trace) + MARGIN
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="msc" role="img" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
           f'font-family="system-ui,sans-serif" font-size="11">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
           'fill="context-stroke"/></marker></defs>']
    for node in lanes:
        out.append(f'<text x="{x[node]}" y="18" text-anchor="middle" font-weight="600">'
                   f'{escape(node)}</text>')
        out.append(f'<line x1="{x[node]}" y1="26" x2="{x[node]}" y2="{height - MARGIN // 2}" '
                   f'stroke="#8c959f" stroke-dasharray="4 3"/>')
    for i, entry in enumerate(trace):
        y = TOP + ROW_HEIGHT * i + ROW_HEIGHT // 2
        colour = FAILED if entry.get("step") in failed_steps else NORMAL
        a, b = x[entry["from"]], x[entry["to"]]
        label = escape(_short(entry["what"]))
        title = f'<title>{escape(entry["what"])}</title>'
        if a == b:  # a note on one lane (the suite's own remark)
            out.append(f'<g>{title}<rect x="{a - LANE_WIDTH // 2 + 6}" y="{y - 13}" '
                       f'width="{LANE_WIDTH - 12}" height="20" rx="3" fill="#fff8c5" '
                       f'stroke="{colour}"/><text x="{a}" y="{y + 1}" text-anchor="middle" '
                       f'fill="{colour}">{escape(_short(entry["what"], 26))}</text></g>')
            continue
        mid = (a + b) // 2
        out.append(f'<g>{title}<line x1="{a}" y1="{y + 6}" x2="{b}" y2="{y + 6}" '
                   f'stroke="{colour}" stroke-width="1.5" marker-end="url(#arrow)"/>'
                   f'<text x="{mid}" y="{y}" text-anchor="middle" fill="{colour}">'
                   f'{i + 1}. {label}</text></g>')
    out.append("</svg>")
    return "".join(out)
