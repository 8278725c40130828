"""report.html: self-contained, with every chart, escaped, and the same page for the same run."""

from __future__ import annotations

import re
from collections import Counter

from corpusclean.tasks.corpus.report_html import render

REPORT = {
    "run_id": "20261130T000000Z-abcdef", "pipeline_version": "0.1.0+schema3",
    "started_at": "2026-11-30T00:00:00+00:00", "finished_at": "2026-11-30T00:00:09+00:00", "wall_seconds": 9.1,
    "raw_dir": "/data/raw", "out_dir": "/data/clean",
    "inputs": {"files": 3, "bytes": 120_000, "shards": 1, "new": 3, "changed": 0, "unchanged": 0},
    "counts": {"documents": 3, "paragraphs": 40, "kept": 20, "boilerplate": 15, "duplicate": 5, "rejects": 1},
    "boilerplate_reasons": {"nav_menu": 10, "newsletter": 5}, "reject_reasons": {"empty_text": 1},
    "languages": {"en": 2, "fr": 1},
    "stages": {"read": {"cpu_seconds": 0.5, "wall_seconds": 0.6}, "boilerplate": {"cpu_seconds": 2.0, "wall_seconds": 2.5}},
}
EXTRA = {
    "sites": {"example.org": Counter(kept=10, boilerplate=8, duplicate=2), "news/<b>": Counter(kept=10, boilerplate=7, duplicate=3)},
    "lengths": {"kept": Counter({3: 12, 4: 8}), "boilerplate": Counter({0: 15}), "duplicate": Counter({3: 5})},
    "cluster_sizes": Counter({0: 3, 1: 1}),
    "examples": {"newsletter": [("a.txt", "Sign up for our <newsletter> & more")], "nav_menu": [("b.txt", "Home | About")]},
}


def test_the_page_has_every_chart_and_needs_no_network():
    page = render(REPORT, EXTRA)
    for title in ("Boilerplate reasons", "Document languages", "Rejected inputs", "per site or folder",
                  "Paragraph length", "Duplicate clusters by size", "Stage timings", "Examples per boilerplate reason"):
        assert title in page, title
    assert page.count("<svg") >= 9
    assert not re.search(r"<script|<link|src=|https?://", page)  # self-contained: nothing fetched
    assert "&lt;newsletter&gt; &amp; more" in page and "news/&lt;b&gt;" in page  # text is escaped
    assert render(REPORT, EXTRA) == page  # deterministic


def test_an_empty_run_still_renders():
    empty = dict(REPORT, counts={k: 0 for k in REPORT["counts"]}, boilerplate_reasons={}, reject_reasons={},
                 languages={}, stages={})
    page = render(empty, {"sites": {}, "lengths": {k: Counter() for k in ("kept", "boilerplate", "duplicate")},
                          "cluster_sizes": Counter(), "examples": {}})
    assert "no boilerplate in this run" in page and "no duplicate clusters" in page


def test_examples_are_the_first_rows_of_each_reason():
    # add_figures' examples against the walk over every flagged row, across tables (some reasons
    # already full from an earlier table), reasons in order of first appearance
    import random

    import pyarrow as pa

    from corpusclean.tasks.corpus import report_html as rh

    rng = random.Random(8)
    reasons = ["nav", "share", "cookie", "caption", None]
    figures, expect = rh.empty_figures(), {}
    for t in range(6):
        n = rng.randint(0, 40)
        rs = [rng.choice(reasons) for _ in range(n)]
        table = pa.table({
            "is_boilerplate": [r is not None for r in rs], "is_duplicate": [False] * n,
            "text": [f"t{t}-{i}" for i in range(n)], "doc_id": [f"d{i // 5}" for i in range(n)],
            "dup_cluster": pa.array([None] * n, pa.string()), "boilerplate_reason": pa.array(rs, pa.string()),
            "source_path": [f"s{t}" for _ in range(n)],
        })
        rh.add_figures(figures, table, {})
        for i, r in enumerate(rs):
            if r is not None:
                picked = expect.setdefault(r, [])
                if len(picked) < rh.EXAMPLES_PER_REASON:
                    picked.append((f"s{t}", f"t{t}-{i}"))
    assert list(figures["examples"].items()) == list(expect.items())
