"""What-ifs (issue 9): lexical cohesion with the main block's core, in-page repetition and title
words as decision-level evidence, scored **left out** on a ``bench/whatif.py`` dump with
score.py's exact figures (``whatif.Scorer``). No refit: today's decisions (the dump's reasons),
then one family's change; each family's constants are chosen on four sources (best mean F1) and
the fifth is scored with them.

Per page the classifier reads: a line's *content words* are its lower-cased ``\\w+`` tokens of at
least 4 characters, not digits, not a function word of any stop-word list; the *core vocabulary*
the content words of the kept lines of the main block's core. A line's *cohesion* is the share of
its content words in the core vocabulary (for a kept core line: in the vocabulary of the *other*
kept core lines); ``tfidf`` the same share weighted by each word's inverse line frequency in the
page (a word of every menu weighs little).

Families (``--family``):

- ``keep``: a line the classifier removed (not a rule, not a comment thread) whose cohesion is at
  least ``c``, with at least ``k`` content words and a score of at least ``floor``, outside the
  core (``where`` out) or anywhere, before the first comment marker or not (``before_marker``),
  is kept;
- ``drop``: a kept line outside the core with at least ``k`` content words and cohesion at most
  ``c`` (and a score under ``pmax``) is removed;
- ``both``: ``keep`` and ``drop`` together (a smaller grid);
- ``repeat``: a kept line outside the core (``where`` out) or outside the main block (``block``),
  whose normalised text (lower case, spaces collapsed) occurs at least twice in the page, with at
  least ``chars`` characters, is removed;
- ``title``: like ``keep``/``drop`` but against the vocabulary of the page's first ``n`` lines.

    PYTHONPATH=. .venv/bin/python bench/cohesion_whatif.py /tmp/q-whatif.pkl --family keep
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench import whatif  # noqa: E402
from bench.eval_boilerplate import GOLD_SETS, SNIPPET_SET, SOURCES  # noqa: E402

_FW: frozenset = frozenset()
CLASSIFIER = {"navigation", "link_list", "short_outside_content", "low_text_density", "outside_content"}
_WORD = re.compile(r"\w+")


def _function_words() -> frozenset[str]:
    from corpusclean.tasks.stages.language import stopwords

    out: set[str] = set()
    for words in stopwords().values():
        out |= words
    return frozenset(out)


class Prep:
    """Per page: content words of each line, cohesion with the core, normalised repeats."""

    __slots__ = ("words", "coh", "tfidf", "nw", "rep", "marker", "title_coh", "hits", "vsize")

    def __init__(self, page, fw, markers, title_n=3):
        lines = page.lines
        n = len(lines)
        words = []
        for line in lines:
            ws = [w for w in _WORD.findall(line.lower()) if len(w) >= 4 and not w.isdigit() and w not in fw]
            words.append(set(ws))
        self.words = words
        self.nw = [len(w) for w in words]
        kept_core = [i for i in range(n) if page.in_core[i] and page.reasons[i] is None]
        vocab = Counter()
        for i in kept_core:
            vocab.update(words[i])
        df = Counter()
        for w in words:
            df.update(w)
        kc = set(kept_core)
        coh = [0.0] * n
        tf = [0.0] * n
        hits = [0] * n
        self.vsize = len(vocab)
        for i in range(n):
            ws = words[i]
            if not ws:
                continue
            own = 1 if i in kc else 0
            hit = [w for w in ws if vocab[w] - own > 0]
            coh[i] = len(hit) / len(ws)
            hits[i] = len(hit)
            tot = sum(1.0 / df[w] for w in ws)
            tf[i] = sum(1.0 / df[w] for w in hit) / tot
        self.coh, self.tfidf, self.hits = coh, tf, hits
        norm = [" ".join(line.lower().split()) for line in lines]
        cnt = Counter(norm)
        self.rep = [cnt[s] > 1 for s in norm]
        found = markers.markers(lines)
        self.marker = found[0] if found else n
        # title words: the first title_n lines with content words
        tv = set()
        taken = 0
        first = 0
        for i in range(n):
            if words[i]:
                tv |= words[i]
                taken += 1
                first = i
                if taken >= title_n:
                    break
        self.title_coh = [
            (len(words[i] & tv) / len(words[i]) if words[i] and i > first else 0.0) for i in range(n)
        ]


def apply(page, pr: Prep, fam: str, c: dict) -> list:
    reasons = list(page.reasons)
    if not page.classified:
        return reasons
    n = len(reasons)
    coh = pr.tfidf if c.get("tfidf") else (pr.title_coh if fam.startswith("title") else pr.coh)
    if fam in ("keep", "both", "title_keep") and pr.vsize >= c.get("vmin_keep", 0):
        for i in range(n):
            r = reasons[i]
            if r not in CLASSIFIER:
                continue
            if c.get("where", "out") == "out" and page.in_core[i]:
                continue
            if c.get("before_marker") and i >= pr.marker:
                continue
            p = page.p[i]
            if p is None or p < c.get("floor", 0.0):
                continue
            if pr.nw[i] >= c["k"] and coh[i] >= c["c"] and pr.hits[i] >= c.get("m", 0):
                reasons[i] = None
    if fam in ("drop", "both", "title_drop") and pr.vsize >= c.get("vmin", 0):
        kd, cd = c.get("kd", c.get("k")), c.get("cd", c.get("c"))
        for i in range(n):
            if page.reasons[i] is not None or page.in_core[i] or page.p[i] is None:
                continue
            if page.p[i] >= c.get("pmax", 1.01):
                continue
            if pr.nw[i] >= kd and coh[i] <= cd:
                reasons[i] = "outside_content"
    if fam == "dropx":  # production semantics: substring of the core's lower-cased text, core size in characters
        core = "\n".join(page.lines[i] for i in range(n) if page.in_core[i] and page.reasons[i] is None).lower()
        if len(core) < c["chars"]:
            return reasons
        fw = _FW
        for i in range(n):
            if page.reasons[i] is not None or page.in_core[i] or page.p[i] is None or page.p[i] >= c["pmax"]:
                continue
            if c.get("nonterminal") and page.lines[i].rstrip().rstrip("\"'»”’)] ")[-1:] in ".!?…":
                continue
            ws = {w for w in _WORD.findall(page.lines[i].lower()) if len(w) >= 4 and not w.isdigit() and w not in fw}
            if len(ws) >= c["k"] and sum(w in core for w in ws) <= c["c"] * len(ws):
                reasons[i] = "outside_content"
    if fam == "repeat":
        for i in range(n):
            if page.reasons[i] is not None or page.p[i] is None:
                continue
            inside = page.in_block[i] if c["where"] == "block" else page.in_core[i]
            if inside:
                continue
            if pr.rep[i] and len(page.lines[i].strip()) >= c["chars"]:
                reasons[i] = "outside_content"
    return reasons


GRIDS = {
    "keep": {"c": [0.5, 0.67, 0.8, 1.0], "k": [2, 3, 5], "floor": [0.0, 0.1, 0.25], "where": ["out", "any"],
             "before_marker": [False, True]},
    "keep_tfidf": {"c": [0.5, 0.67, 0.8, 0.9], "k": [2, 3, 5], "floor": [0.0, 0.1, 0.25], "where": ["out"],
                   "before_marker": [True], "tfidf": [True]},
    "drop": {"c": [0.0, 0.1, 0.2, 0.34], "k": [2, 3, 5, 8], "pmax": [0.8, 0.9, 1.01]},
    "keep2": {"c": [0.34, 0.5, 0.67], "k": [4, 5, 6, 8], "floor": [0.05, 0.1, 0.15], "where": ["out"],
              "before_marker": [False, True]},
    "drop2": {"c": [0.0, 0.1], "k": [3, 5], "pmax": [0.7, 0.8], "vmin": [50, 100, 200, 400]},
    "dropx": {"c": [0.0, 0.1], "k": [3, 5], "pmax": [0.7, 0.8], "chars": [300, 600, 1000, 2000]},
    "dropx2": {"c": [0.0, 0.1], "k": [3, 5], "pmax": [0.7, 0.8, 0.9], "chars": [300, 1000], "nonterminal": [True]},
    "drop_tfidf": {"c": [0.0, 0.1, 0.2], "k": [2, 3, 5, 8], "pmax": [0.8, 1.01], "tfidf": [True]},
    "both": {"c": [0.5, 0.67], "k": [4, 5, 6], "floor": [0.1, 0.15], "where": ["out"], "before_marker": [True],
             "cd": [0.0, 0.1], "kd": [3], "pmax": [0.7, 0.8], "vmin": [50]},
    "drop3": {"c": [0.0, 0.1], "k": [2, 3, 4], "pmax": [0.6, 0.7, 0.8], "vmin": [20, 35, 50, 75]},
    "repeat": {"where": ["core", "block"], "chars": [1, 10, 20, 40]},
    "title_keep": {"c": [0.5, 0.8, 1.0], "k": [2, 3], "floor": [0.0, 0.1, 0.25], "where": ["out"],
                   "before_marker": [True]},
    "title_drop": {"c": [0.0], "k": [3, 5, 8], "pmax": [0.8, 1.01]},
}


def combos(grid):
    keys = list(grid)
    for vals in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", type=Path)
    ap.add_argument("--family", action="append", required=True)
    ap.add_argument("--grid", help="JSON grid in place of the family's")
    a = ap.parse_args()
    import json

    from corpusclean.tasks.stages.linefeatures import default_comment_threads

    pages = whatif.load(a.path)
    fw = _function_words()
    global _FW
    _FW = fw
    markers = default_comment_threads()
    t = time.perf_counter()
    preps = [Prep(p, fw, markers) if p.classified else None for p in pages]
    print(f"prepared in {time.perf_counter() - t:.0f} s", flush=True)
    s = whatif.Scorer(pages)
    base = s.table(lambda p: p.reasons, label="today")
    pi = {id(p): k for k, p in enumerate(pages)}
    for fam in a.family:
        grid = json.loads(a.grid) if a.grid else GRIDS[fam]
        kind = fam.replace("_tfidf", "")
        kind = kind if kind == "dropx" else kind.rstrip("0123456789")
        kind = "dropx" if kind.startswith("dropx") else kind
        results = []
        for c in combos(grid):
            f = s.table(lambda p: apply(p, preps[pi[id(p)]], kind, c), base=base, label=json.dumps(c))
            results.append((c, f))
        report(fam, results, base)


def report(fam, results, base):
    srcs = list(SOURCES)
    print(f"\n== {fam}: {len(results)} combinations; left out (chosen on the other four by mean F1)")
    row = {}
    for held in srcs:
        others = [x for x in srcs if x != held]
        best = max(results, key=lambda r: sum(r[1][x] for x in others) / 4)
        row[held] = best[1][held]
        if held == SNIPPET_SET:
            row["snippet:fr"] = best[1]["snippet:fr"]
        print(f"  {held:<12} {best[1][held]:.4f} ({best[1][held] - base[held]:+.4f})  with {best[0]}")
    mean = sum(row[x] for x in GOLD_SETS) / 4
    print(f"| {fam} | {row[SNIPPET_SET]:.4f} ({row['snippet:fr']:.3f}) | " + " | ".join(f"{row[x]:.4f}" for x in GOLD_SETS)
          + f" | {mean:.4f} |")
    print(f"| today | {base[SNIPPET_SET]:.4f} ({base['snippet:fr']:.3f}) | " + " | ".join(f"{base[x]:.4f}" for x in GOLD_SETS)
          + f" | {base['mean4']:.4f} |")
    ins = max(results, key=lambda r: r[1]["mean4"])
    f = ins[1]
    print(f"in sample best mean4: {ins[0]}: snippet {f[SNIPPET_SET]:.4f} ({f['snippet:fr']:.3f}) "
          + " ".join(f"{x} {f[x]:.4f}" for x in GOLD_SETS) + f" mean4 {f['mean4']:.4f}", flush=True)


if __name__ == "__main__":
    main()
