"""One self-contained HTML file: a run's timeline and its graph as inline SVG.

One bar per attempt, in the slot it ran in, coloured by its status; a
task's retries are its later bars (labelled ``#2``, ``#3``); the critical
path (the chain of tasks that ended last, each waiting on the dependency
that ended last) is outlined, in the timeline and in the graph beside it.
Hovering a bar or a node shows its details (SVG ``<title>``). No script
and nothing fetched: the file opens offline, anywhere.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from wave_executor.report.graph import depths

__all__ = ["Bar", "Timeline", "assign_slots", "critical_path", "render_report"]

COLOURS = {
    "success": "#2e9d57",
    "failed": "#d64545",
    "timeout": "#e08a1e",
    "cancelled": "#8a8f98",
    "interrupted": "#8a8f98",
    "skipped": "#c9b458",
    "reused": "#7fb7d9",
    "not run": "#d8dce2",
}


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt: seconds from the timeline's start."""

    task: str
    attempt: int
    status: str
    start: float
    end: float
    detail: str = ""


@dataclass(slots=True)
class Timeline:
    title: str
    bars: list[Bar]
    deps: Mapping[str, Sequence[str]]
    statuses: Mapping[str, str] = field(default_factory=dict)
    note: str = ""


def assign_slots(bars: Sequence[Bar]) -> list[int]:
    """The slot of each bar: the first one free when it starts (interval partitioning)."""
    order = sorted(range(len(bars)), key=lambda i: (bars[i].start, bars[i].end))
    ends: list[float] = []
    slots = [0] * len(bars)
    for i in order:
        bar = bars[i]
        for s, end in enumerate(ends):
            if end <= bar.start + 1e-9:
                ends[s] = bar.end
                slots[i] = s
                break
        else:
            ends.append(bar.end)
            slots[i] = len(ends) - 1
    return slots


def critical_path(deps: Mapping[str, Iterable[str]], ends: Mapping[str, float]) -> list[str]:
    """From the task that ended last back through the dependency that ended last."""
    if not ends:
        return []
    task = max(ends, key=lambda t: ends[t])
    path = [task]
    while True:
        ups = [u for u in deps.get(task, ()) if u in ends]
        if not ups:
            break
        task = max(ups, key=lambda t: ends[t])
        path.append(task)
    return path[::-1]


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _timeline_svg(tl: Timeline, critical: set[str]) -> str:
    bars = tl.bars
    slots = assign_slots(bars)
    lanes = max(slots, default=-1) + 1
    span = max((b.end for b in bars), default=0.0) or 1.0
    left, width, lane_h, top = 64, 760, 26, 24
    height = top + max(lanes, 1) * lane_h + 10

    def x(t: float) -> float:
        return left + width * t / span

    out = [
        f'<svg class="timeline" viewBox="0 0 {left + width + 12} {height}" '
        f'width="{left + width + 12}" height="{height}" role="img" '
        f'aria-label="{_esc(tl.title)}: one bar per attempt">'
    ]
    ticks = 8
    for k in range(ticks + 1):
        t = span * k / ticks
        out.append(
            f'<line class="tick" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 4}" y2="{height - 6}"/>'
            f'<text class="axis" x="{x(t):.1f}" y="{top - 8}">{t:.3g}s</text>'
        )
    for s in range(lanes):
        y = top + s * lane_h
        out.append(f'<text class="lane" x="4" y="{y + 17}">slot {s + 1}</text>')
    for bar, slot in zip(bars, slots, strict=True):
        y = top + slot * lane_h + 3
        x0, x1 = x(bar.start), x(bar.end)
        w = max(x1 - x0, 2.0)
        colour = COLOURS.get(bar.status, "#555")
        classes = f"bar status-{bar.status.replace(' ', '-')}"
        if bar.task in critical:
            classes += " critical"
        label = bar.task if bar.attempt <= 1 else f"{bar.task} #{bar.attempt}"
        tip = (
            f"{bar.task}, attempt {bar.attempt}: {bar.status}\n"
            f"{bar.start:.3f}s .. {bar.end:.3f}s ({bar.end - bar.start:.3f}s)"
            + (f"\n{bar.detail}" if bar.detail else "")
        )
        out.append(
            f'<g class="attempt"><rect class="{classes}" data-task="{_esc(bar.task)}" '
            f'data-attempt="{bar.attempt}" data-status="{_esc(bar.status)}" x="{x0:.1f}" '
            f'y="{y}" width="{w:.1f}" height="{lane_h - 6}" rx="3" fill="{colour}">'
            f"<title>{_esc(tip)}</title></rect>"
        )
        if w > 7 * len(label) + 6:
            out.append(f'<text class="label" x="{x0 + 4:.1f}" y="{y + 14}">{_esc(label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _graph_svg(tl: Timeline, critical: set[str]) -> str:
    deps = {t: list(ups) for t, ups in tl.deps.items()}
    for name in tl.statuses:
        deps.setdefault(name, [])
    for bar in tl.bars:
        deps.setdefault(bar.task, [])
    depth = depths(deps)
    columns: dict[int, list[str]] = {}
    for name in deps:
        columns.setdefault(depth[name], []).append(name)
    node_w, node_h, gap_x, gap_y = 118, 26, 40, 14
    pos: dict[str, tuple[float, float]] = {}
    for d, names in columns.items():
        for k, name in enumerate(names):
            pos[name] = (10 + d * (node_w + gap_x), 10 + k * (node_h + gap_y))
    width = 20 + (max(columns, default=0) + 1) * (node_w + gap_x) - gap_x
    height = 20 + max((len(v) for v in columns.values()), default=1) * (node_h + gap_y) - gap_y
    out = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="task graph">'
    ]
    for task, ups in deps.items():
        for up in ups:
            (ux, uy), (tx, ty) = pos[up], pos[task]
            x0, y0, x1, y1 = ux + node_w, uy + node_h / 2, tx, ty + node_h / 2
            mid = (x0 + x1) / 2
            cls = "edge critical" if up in critical and task in critical else "edge"
            out.append(
                f'<path class="{cls}" d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} '
                f'{mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"/>'
            )
    for name, (nx, ny) in pos.items():
        status = tl.statuses.get(name, "not run")
        cls = "node critical" if name in critical else "node"
        short = name if len(name) <= 15 else name[:14] + "…"
        out.append(
            f'<g class="{cls}" data-task="{_esc(name)}"><rect x="{nx}" y="{ny}" width="{node_w}" '
            f'height="{node_h}" rx="6" fill="{COLOURS.get(status, "#555")}"/>'
            f'<text x="{nx + 8}" y="{ny + 17}">{_esc(short)}</text>'
            f"<title>{_esc(name)}: {_esc(status)}</title></g>"
        )
    out.append("</svg>")
    return "".join(out)


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2129; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 6px; }
.note { color: #5b6270; margin: 0 0 10px; }
.row { display: flex; gap: 28px; align-items: flex-start; flex-wrap: wrap; }
svg text { font: 11px system-ui, sans-serif; }
.axis { fill: #6b7280; text-anchor: middle; } .lane { fill: #6b7280; }
.tick { stroke: #eceef2; }
.bar { stroke: #ffffff; stroke-width: 1; }
.bar:hover, .node:hover rect { stroke: #111; stroke-width: 2; }
.bar.critical { stroke: #111; stroke-width: 2.5; }
.label { fill: #fff; pointer-events: none; }
.node text { fill: #fff; pointer-events: none; }
.node.critical rect { stroke: #111; stroke-width: 2.5; }
.edge { fill: none; stroke: #9aa1ad; stroke-width: 1.4; }
.edge.critical { stroke: #111; stroke-width: 2.5; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  margin-right: 4px; vertical-align: -1px; }
table { border-collapse: collapse; margin-top: 8px; }
td, th { padding: 2px 10px; text-align: left; }
th { border-bottom: 1px solid #ccd; } td.err { color: #b42318; font-family: monospace; }
"""


def _task_rows(tl: Timeline, critical: set[str]) -> str:
    attempts: dict[str, list[Bar]] = {}
    for bar in tl.bars:
        attempts.setdefault(bar.task, []).append(bar)
    names = list(dict.fromkeys([*tl.statuses, *attempts]))
    rows = ["<table><tr><th>task</th><th>status</th><th>attempts</th><th>time</th>"
            "<th>critical path</th><th>last error</th></tr>"]  # fmt: skip
    for name in names:
        bars = attempts.get(name, [])
        took = sum(b.end - b.start for b in bars)
        error = next((b.detail for b in reversed(bars) if b.status != "success" and b.detail), "")
        rows.append(
            f"<tr><td>{_esc(name)}</td><td>{_esc(tl.statuses.get(name, '-'))}</td>"
            f"<td>{len(bars)}</td><td>{took:.3f}s</td><td>{'yes' if name in critical else ''}</td>"
            f'<td class="err">{_esc(error.splitlines()[0] if error else "")}</td></tr>'
        )
    rows.append("</table>")
    return "".join(rows)


def render_report(title: str, timelines: Sequence[Timeline]) -> str:
    """The whole HTML document."""
    sections = []
    for tl in timelines:
        ends: dict[str, float] = {}
        for bar in tl.bars:
            ends[bar.task] = max(ends.get(bar.task, 0.0), bar.end)
        path = critical_path(tl.deps, ends)
        critical = set(path)
        span = max(ends.values(), default=0.0)
        sections.append(
            f'<section class="run"><h2>{_esc(tl.title)}</h2>'
            f'<p class="note">{_esc(tl.note)} {len(tl.bars)} attempts, {span:.3f}s; '
            f"critical path: {_esc(' → '.join(path) or '-')}</p>"
            f'<div class="row"><div>{_timeline_svg(tl, critical)}</div>'
            f"<div>{_graph_svg(tl, critical)}</div></div>"
            f"{_task_rows(tl, critical)}</section>"
        )
    legend = "".join(
        f'<span><i style="background:{c}"></i>{_esc(s)}</span>' for s, c in COLOURS.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f'<h1>{_esc(title)}</h1><p class="legend">{legend} '
        "<span>outlined: critical path; hover a bar or a node for details</span></p>"
        + "".join(sections)
        + "</body></html>\n"
    )
