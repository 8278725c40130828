"""report.html: the run report as one self-contained page of charts, for a person to check at a glance.

Charts are inline SVG drawn here: no chart library, no script, no network. (Plotly would inline
~3.5 MB of JavaScript into every report; Altair needs Vega from a CDN or inlined the same way;
a handful of bar charts is a few KB of SVG and adds nothing to the lock file.)
Same run, same page: the examples are picked in corpus order, nothing is random.
"""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

EXAMPLES_PER_REASON = 3
EXAMPLE_CHARS = 240
TOP_SITES = 15
LENGTH_BINS = [0, 20, 40, 80, 160, 320, 640, 1280, 2560]  # paragraph length, characters (lower edges)
CLUSTER_BINS = [2, 3, 4, 5, 10, 100]  # duplicate cluster size (members in this run), lower edges
COLOURS = {"kept": "#2e7d32", "boilerplate": "#f9a825", "duplicate": "#8e24aa"}


def gather(run, results, dedup) -> dict:
    """Per-paragraph figures of this run, read back from its paragraphs files (written just before)."""
    site_of: dict[str, str] = {}
    for r in results:
        site_of.update(zip(r.doc_ids, r.doc_sites))
    sites: dict[str, Counter] = {}
    lengths: dict[str, Counter] = {kind: Counter() for kind in COLOURS}
    clusters: Counter = Counter()
    examples: dict[str, list[tuple[str, str]]] = {}
    columns = ["doc_id", "source_path", "text", "is_boilerplate", "boilerplate_reason", "is_duplicate", "dup_cluster"]
    for path in sorted((Path(run.run_dir) / "paragraphs").glob("*.parquet")):
        table = pq.read_table(path, columns=columns)
        kinds = ["duplicate" if d else "boilerplate" if b else "kept"
                 for b, d in zip(table.column("is_boilerplate").to_pylist(), table.column("is_duplicate").to_pylist())]
        n_chars = pc.utf8_length(table.column("text")).to_pylist()
        for doc_id, kind, n in zip(table.column("doc_id").to_pylist(), kinds, n_chars):
            site = site_of.get(doc_id) or "(no URL, top folder)"  # a record without URL in a top-level file
            sites.setdefault(site, Counter())[kind] += 1
            lengths[kind][_bin(n, LENGTH_BINS)] += 1
        clusters.update(c for c in table.column("dup_cluster").to_pylist() if c is not None)
        reasons = table.column("boilerplate_reason").to_pylist()
        wanted = [i for i, reason in enumerate(reasons)
                  if reason is not None and len(examples.setdefault(reason, [])) < EXAMPLES_PER_REASON]
        for i in wanted:
            picked = examples[reasons[i]]
            if len(picked) < EXAMPLES_PER_REASON:
                picked.append((table.column("source_path")[i].as_py(), table.column("text")[i].as_py()))
    sizes = Counter(_bin(size, CLUSTER_BINS) for size in clusters.values() if size >= 2)
    return {"sites": sites, "lengths": lengths, "cluster_sizes": sizes, "examples": examples}


def _bin(value: int, edges: list[int]) -> int:
    """Index of the bin ``value`` falls in (the last bin is open-ended)."""
    index = 0
    for i, edge in enumerate(edges):
        if value >= edge:
            index = i
    return index


def _bin_labels(edges: list[int]) -> list[str]:
    labels = []
    for i, edge in enumerate(edges):
        if i + 1 < len(edges):
            upper = edges[i + 1] - 1
            labels.append(str(edge) if upper == edge else f"{edge}–{upper}")
        else:
            labels.append(f"{edge}+")
    return labels


# ------------------------------------------------------------------------------ SVG


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def bar_chart(items: list[tuple[str, float]], unit: str = "", colour: str = "#1565c0", label_width: int = 190) -> str:
    """Horizontal bars, one per (label, value), largest value spanning the width."""
    if not items:
        return "<p class=empty>none</p>"
    row, width = 22, 360
    top = max(v for _, v in items) or 1
    height = row * len(items) + 4
    parts = [f'<svg width="{label_width + width + 90}" height="{height}" role="img">']
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = max(1.0, width * value / top) if value else 0
        shown = f"{value:,.2f}" if isinstance(value, float) and not float(value).is_integer() else f"{int(value):,}"
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{_e(_cut(label, 30))}</text>'
                     f'<rect x="{label_width}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}">'
                     f'<title>{_e(label)}: {shown}{unit}</title></rect>'
                     f'<text x="{label_width + w + 5:.1f}" y="{y + 15}">{shown}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_chart(rows: list[tuple[str, Counter]], kinds: dict[str, str], label_width: int = 220) -> str:
    """Horizontal 100% bars: each row's split across ``kinds`` (name -> colour), with its total."""
    if not rows:
        return "<p class=empty>none</p>"
    row, width = 22, 360
    parts = [f'<svg width="{label_width + width + 80}" height="{row * len(rows) + 4}" role="img">']
    for i, (label, counts) in enumerate(rows):
        y, x = i * row + 2, float(label_width)
        total = sum(counts.values()) or 1
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{_e(_cut(label, 34))}</text>')
        for kind, colour in kinds.items():
            w = width * counts.get(kind, 0) / total
            if w > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{colour}">'
                             f'<title>{_e(label)}: {counts.get(kind, 0):,} {kind} '
                             f'({100 * counts.get(kind, 0) / total:.0f}%)</title></rect>')
                x += w
        parts.append(f'<text x="{label_width + width + 5}" y="{y + 15}">{sum(counts.values()):,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(values: list[int], labels: list[str], colour: str) -> str:
    """Vertical bars (a histogram), labelled under each bar."""
    col, height = 44, 120
    top = max(values) if values and max(values) else 1
    parts = [f'<svg width="{col * len(values) + 10}" height="{height + 36}" role="img">']
    for i, (value, label) in enumerate(zip(values, labels)):
        h = height * value / top
        x = i * col + 5
        parts.append(f'<rect x="{x + 4}" y="{height - h + 14:.1f}" width="{col - 8}" height="{h:.1f}" fill="{colour}">'
                     f'<title>{_e(label)}: {value:,}</title></rect>'
                     f'<text x="{x + col / 2}" y="{height - h + 11:.1f}" text-anchor="middle" class=small>{value:,}</text>'
                     f'<text x="{x + col / 2}" y="{height + 28}" text-anchor="middle" class=small>{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ------------------------------------------------------------------------------ page

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
svg text{font-size:12px;fill:#333} svg text.small{font-size:11px} .meta{color:#555}
.grid{display:flex;flex-wrap:wrap;gap:24px} .grid>div{flex:0 0 auto}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right} .empty{color:#777} .legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.ex{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;max-width:760px}
"""


def render(report: dict, extra: dict) -> str:
    c, i = report["counts"], report["inputs"]
    legend = "<p class=legend>" + "".join(f'<span><i style="background:{col}"></i>{kind}</span>'
                                          for kind, col in COLOURS.items()) + "</p>"
    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>corpusclean run {_e(report['run_id'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>corpusclean run {_e(report['run_id'])}</h1>",
        f"<p class=meta>{_e(report['started_at'])} → {_e(report['finished_at'])} ({report['wall_seconds']} s) · "
        f"input <code>{_e(report['raw_dir'])}</code>: {i['files']} files, {i['bytes'] / 1e6:.2f} MB "
        f"({i.get('new', 0)} new, {i.get('changed', 0)} changed, {i.get('unchanged', 0)} unchanged) · "
        f"output <code>{_e(report['out_dir'])}</code> · pipeline {_e(report['pipeline_version'])}</p>",
        "<h2>Paragraphs</h2>", legend,
        stacked_chart([("all paragraphs", Counter(kept=c["kept"], boilerplate=c["boilerplate"],
                                                   duplicate=c["duplicate"]))], COLOURS),
        "<table><tr>" + "".join(f"<th>{k}</th>" for k in ("documents", "paragraphs", "kept", "boilerplate",
                                                          "duplicate", "rejects")) + "</tr><tr>"
        + "".join(f"<td class=n>{c[k]:,}</td>" for k in ("documents", "paragraphs", "kept", "boilerplate",
                                                         "duplicate", "rejects")) + "</tr></table>",
        "<div class=grid>",
        "<div><h2>Boilerplate reasons</h2>" + bar_chart(list(report["boilerplate_reasons"].items()), " ¶",
                                                        COLOURS["boilerplate"]) + "</div>",
        "<div><h2>Document languages</h2>" + bar_chart(list(report["languages"].items())[:20], " docs") + "</div>",
        "</div>",
    ]
    if report["reject_reasons"]:
        out.append("<h2>Rejected inputs</h2>" + bar_chart(list(report["reject_reasons"].items()), "", "#c62828"))
    sites = sorted(extra["sites"].items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    more = f" (the {TOP_SITES} largest of {len(sites)})" if len(sites) > TOP_SITES else ""
    out += [f"<h2>Kept, boilerplate and duplicate paragraphs per site or folder{more}</h2>", legend,
            stacked_chart(sites[:TOP_SITES], COLOURS)]
    labels = _bin_labels(LENGTH_BINS)
    out.append("<h2>Paragraph length (characters)</h2><div class=grid>")
    for kind, colour in COLOURS.items():
        values = [extra["lengths"][kind].get(b, 0) for b in range(len(LENGTH_BINS))]
        out.append(f"<div><b>{kind}</b> ({sum(values):,})<br>{column_chart(values, labels, colour)}</div>")
    out.append("</div>")
    sizes = [extra["cluster_sizes"].get(b, 0) for b in range(len(CLUSTER_BINS))]
    out.append("<h2>Duplicate clusters by size (paragraphs of this run per cluster)</h2>"
               + (column_chart(sizes, _bin_labels(CLUSTER_BINS), COLOURS["duplicate"]) if any(sizes)
                  else "<p class=empty>no duplicate clusters</p>"))
    stages = report["stages"]
    out.append("<div class=grid><div><h2>Stage timings: wall seconds (summed over shards)</h2>"
               + bar_chart([(k, float(s["wall_seconds"])) for k, s in stages.items()], " s", "#455a64") + "</div>"
               + "<div><h2>Stage timings: CPU seconds</h2>"
               + bar_chart([(k, float(s["cpu_seconds"])) for k, s in stages.items()], " s", "#78909c") + "</div></div>")
    out.append(f"<h2>Examples per boilerplate reason (the first {EXAMPLES_PER_REASON} in corpus order)</h2>")
    if extra["examples"]:
        out.append("<table><tr><th>reason</th><th>source</th><th>paragraph</th></tr>")
        for reason in sorted(extra["examples"]):
            for source, text in extra["examples"][reason]:
                out.append(f"<tr><td>{_e(reason)}</td><td>{_e(source)}</td>"
                           f"<td class=ex>{_e(_cut(text, EXAMPLE_CHARS))}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p class=empty>no boilerplate in this run</p>")
    out.append("<p class=meta>Machine-readable: report.json beside this file.</p></body></html>\n")
    return "\n".join(out)
