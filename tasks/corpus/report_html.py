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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EXAMPLES_PER_REASON = 3
EXAMPLE_CHARS = 240
TOP_SITES = 15
LENGTH_BINS = [0, 20, 40, 80, 160, 320, 640, 1280, 2560]  # paragraph length, characters (lower edges)
CLUSTER_BINS = [2, 3, 4, 5, 10, 100]  # duplicate cluster size (members in this run), lower edges
COLOURS = {"kept": "#2e7d32", "boilerplate": "#f9a825", "duplicate": "#8e24aa"}


KINDS = list(COLOURS)  # kept, boilerplate, duplicate: a paragraph's kind, by code
NO_SITE = "(no URL, top folder)"  # a record without URL in a top-level file


def empty_figures() -> dict:
    return {"sites": {}, "lengths": {kind: Counter() for kind in COLOURS}, "clusters": Counter(), "examples": {}}


def add_figures(figures: dict, table, site_of: dict[str, str]) -> None:
    """Add one table of final paragraph rows (in corpus order) to ``figures``: paragraphs per site
    and kind, lengths per kind, members per duplicate cluster, the first examples per reason.

    Computed where the rows are written (``output.finalize_shard``, in the workers), so that the
    report does not read the whole run's text back; ``gather`` reads only files written elsewhere.
    """
    n = table.num_rows
    if not n:
        return
    chrome = table.column("is_boilerplate").to_numpy(zero_copy_only=False).astype(bool)
    dup = table.column("is_duplicate").to_numpy(zero_copy_only=False).astype(bool)
    kind = np.where(dup, 2, np.where(chrome, 1, 0))
    n_chars = pc.utf8_length(table.column("text")).to_numpy(zero_copy_only=False)
    bins = np.maximum(np.searchsorted(np.asarray(LENGTH_BINS), n_chars, side="right") - 1, 0)
    per_kind_bin = np.bincount(kind * len(LENGTH_BINS) + bins, minlength=len(KINDS) * len(LENGTH_BINS))
    for k, name in enumerate(KINDS):
        for b in range(len(LENGTH_BINS)):
            count = int(per_kind_bin[k * len(LENGTH_BINS) + b])
            if count:
                figures["lengths"][name][b] += count
    # Rows are grouped by document: one site look-up per run of equal doc_id.
    doc_ids = table.column("doc_id").to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, doc_ids[1:] != doc_ids[:-1]])
    run_sites = [site_of.get(doc_ids[i]) or NO_SITE for i in starts.tolist()]
    site_names, site_code = np.unique(np.array(run_sites, dtype=object), return_inverse=True)
    row_site = np.repeat(site_code, np.diff(np.r_[starts, n]))
    per_site_kind = np.bincount(row_site * len(KINDS) + kind, minlength=len(site_names) * len(KINDS))
    for s, site in enumerate(site_names.tolist()):
        counter = figures["sites"].setdefault(site, Counter())
        for k, name in enumerate(KINDS):
            count = int(per_site_kind[s * len(KINDS) + k])
            if count:
                counter[name] += count
    clusters = table.column("dup_cluster").drop_null()
    if len(clusters):
        counted = pc.value_counts(clusters)
        figures["clusters"].update(dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())))
    reason_column = table.column("boilerplate_reason")
    examples = figures["examples"]
    candidates = np.flatnonzero(reason_column.is_valid().to_numpy(zero_copy_only=False))
    if len(candidates):
        # The first rows of each reason, reasons in order of first appearance: what a walk over every
        # flagged row appending while a reason has fewer than EXAMPLES_PER_REASON examples picks.
        encoded = reason_column.take(candidates)
        encoded = pc.dictionary_encode(encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded)
        codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        order = np.argsort(codes, kind="stable")  # rows of each reason together, in row order
        bounds = np.searchsorted(codes[order], np.arange(len(encoded.dictionary) + 1)).tolist()
        for code, reason in enumerate(encoded.dictionary.to_pylist()):
            picked = examples.setdefault(reason, [])
            start = bounds[code]
            end = min(bounds[code + 1], start + max(0, EXAMPLES_PER_REASON - len(picked)))
            for i in candidates[order[start:end]].tolist():
                picked.append((table.column("source_path")[i].as_py(), table.column("text")[i].as_py()))


def merge_figures(into: dict, figures: dict) -> None:
    """Add ``figures`` (of files later in corpus order) to ``into``."""
    for site, counts in figures["sites"].items():
        into["sites"].setdefault(site, Counter()).update(counts)
    for kind, counts in figures["lengths"].items():
        into["lengths"][kind].update(counts)
    into["clusters"].update(figures["clusters"])
    for reason, picked in figures["examples"].items():
        have = into["examples"].setdefault(reason, [])
        have.extend(picked[: max(0, EXAMPLES_PER_REASON - len(have))])


def gather(run, results, dedup, summaries=()) -> dict:
    """Per-paragraph figures of this run's paragraphs files: those its shards computed while
    writing them (``summaries``' figures), the others (rewritten parts) read back."""
    site_of: dict[str, str] = {}
    for r in results:
        site_of.update(zip(r.doc_ids, r.doc_sites))
    computed = {Path(s.figures_of).name: s.figures for s in summaries if getattr(s, "figures", None) is not None}
    figures = empty_figures()
    columns = ["doc_id", "source_path", "text", "is_boilerplate", "boilerplate_reason", "is_duplicate", "dup_cluster"]
    for path in sorted((Path(run.run_dir) / "paragraphs").glob("*.parquet")):
        if path.name in computed:
            merge_figures(figures, computed[path.name])
            continue
        part = empty_figures()
        add_figures(part, pq.read_table(path, columns=columns), site_of)
        merge_figures(figures, part)
    sizes = Counter(_bin(size, CLUSTER_BINS) for size in figures["clusters"].values() if size >= 2)
    return {"sites": figures["sites"], "lengths": figures["lengths"], "cluster_sizes": sizes,
            "examples": figures["examples"]}


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
