"""What-if analysis of the boilerplate stage on the five evaluation sources, in seconds.

``dump`` runs repair + paragraphs + the boilerplate stage's own objects on every page of the
snippet set and the four gold sets (the same verdicts as the stage: checked page by page against
``BoilerplateClassifier.classify_batch``) and keeps, per line: its text, the rule's reason, the
final reason (``None`` = kept), the line and context scores, whether it is in the main block /
its core, and its label (gold pages: score.py's "matches the gold"; snippet pages: holds a
with/without snippet). ``Scorer`` then gives score.py's figures for any per-line keep mask: the
kept lines are joined into the prediction text and every raw line (gold) or snippet is matched
exactly as ``score.py`` does (its own ``Ref``/``tok``), with a per-page cache, so a candidate
that changes a few pages is rescored in a fraction of a second.

    PYTHONPATH=. .venv/bin/python bench/whatif.py dump /tmp/whatif.pkl
    PYTHONPATH=. .venv/bin/python bench/whatif.py lost /tmp/whatif.pkl --only readability   # why article lines go
    PYTHONPATH=. .venv/bin/python bench/whatif.py score /tmp/whatif.pkl                      # the figures of the dump
    PYTHONPATH=. .venv/bin/python bench/whatif.py cores /tmp/whatif.pkl                      # errors on pages whose core misses the article
    PYTHONPATH=. .venv/bin/python bench/whatif.py grid /tmp/whatif.pkl \
        --try outside_margin=0,0.05,0.1,0.15,0.2 --try core_share=0.3,0.4,0.5,0.6          # constants, leave-one-source-out

``grid`` re-decides every page of a dump with the real classifier for each combination of decision
constants (``ContentClassifier`` attributes such as ``outside_margin``, ``block_threshold``,
``gap_lines``, ``lead_share``; and ``core_share``, the main block's core bar ``_CORE_SHARE``), scores
each, and prints the **leave-one-source-out** choice: for each of the five sources, the combination
with the best mean F1 over the other four (ties: today's values) and the left-out source's F1 under
it. ~25–30 s per combination; ``--cache FILE`` keeps each combination's scores for the next call on
the same dump (a new dump starts it afresh).

In a session: ``pages = load(path); s = Scorer(pages); s.table(lambda p: p.reasons)``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.eval_boilerplate import (  # noqa: E402
    DEFAULT_GOLD, DEFAULT_PAGES, GOLD_SETS, SNIPPET_SET, SOURCES, half_of, line_labels, load_manifest, load_score_module,
)


class Page:
    """One page of the dump (its lines and, per line, what the stage saw and decided)."""

    __slots__ = ("name", "source", "lang", "lines", "rules", "reasons", "z", "p", "in_block", "in_core", "label",
                 "packs", "classified", "doc_lang", "raw", "gold", "snippets")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def dump(out: Path, overrides: list[str], sources=SOURCES, limit: int | None = None) -> list[Page]:
    import numpy as np

    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages import linefeatures as lf
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage
    from corpusclean.tasks.stages.paragraphs import split_paragraphs
    from corpusclean.tasks.stages.read import decode_bytes
    from corpusclean.tasks.stages.repair import repair_text

    sm = load_score_module()
    config = load_config(None, overrides)
    stage = BoilerplateStage(config.boilerplate)
    pages: list[Page] = []
    mismatches = 0
    for source in sources:
        set_dir = DEFAULT_PAGES if source == SNIPPET_SET else DEFAULT_GOLD
        manifest = [m for m in load_manifest(set_dir) if m["set"] == source][:limit]
        for m in manifest:
            raw = decode_bytes((set_dir / f"{m['name']}.raw.txt").read_bytes())[0]
            text, _ = repair_text(raw, use_ftfy=config.repair.ftfy)
            lines = [text[a:b] for a, b in split_paragraphs(text)]
            page = Page(name=m["name"], source=source, lang=m["lang"], lines=lines)
            page.raw = (set_dir / f"{m['name']}.raw.txt").read_text(encoding="utf-8", errors="replace")
            n = len(lines)
            if n:
                packs = stage.packs_for(lines)
                bc = stage._classifier_for(packs, True)
                rules = bc.classify_rules(lines)
                content = bc.content
                needed, doc_lang = content.needs_features(lines, rules)
                z = [None] * n
                p = [None] * n
                in_block = [False] * n
                in_core = [False] * n
                if needed:
                    doc = lf.document_lines(lines, rules)
                    zz, vec = lf.document_context(doc)
                    probs = lf._probabilities(vec, lf.CONTEXT_WEIGHTS)
                    cols = np.asarray(vec).reshape(-1, len(lf.CONTEXT_FEATURES))
                    for j, i in enumerate(doc.index):
                        z[i], p[i] = zz[j], probs[j]
                        in_block[i] = bool(cols[j, lf._IN_BLOCK])
                        in_core[i] = bool(cols[j, lf._IN_CORE])
                reasons = bc.classify_batch(lines, [(0, n)])
                page.packs, page.rules, page.reasons = packs, rules, reasons
                page.z, page.p, page.in_block, page.in_core, page.classified, page.doc_lang = z, p, in_block, in_core, needed, doc_lang
            else:
                page.packs, page.rules, page.reasons = (), [], []
                page.z = page.p = page.in_block = page.in_core = []
                page.classified = False
            if source == SNIPPET_SET:
                sn = json.loads((set_dir / f"{m['name']}.snippets.json").read_text(encoding="utf-8"))
                page.snippets = sn
                page.label = line_labels(lines, sn)
            else:
                page.gold = (set_dir / f"{m['name']}.gold.txt").read_text(encoding="utf-8", errors="replace")
                ref = sm.Ref(page.gold)
                page.label = [ref.matches(sm.tok(line)) for line in lines]
            pages.append(page)
    with open(out, "wb") as f:
        pickle.dump(pages, f, protocol=pickle.HIGHEST_PROTOCOL)
    return pages


def load(path: Path) -> list[Page]:
    with open(path, "rb") as f:
        return pickle.load(f)


class _PageScore:
    """score.py's counts for one page, for any prediction text (cached per keep mask)."""

    def __init__(self, page: Page, sm):
        self.sm = sm
        self.page = page
        self.cache: dict[bytes, Counter] = {}
        if page.source == SNIPPET_SET:
            rref = sm.Ref(page.raw)
            self.items = [(True, s) for s in page.snippets["with"] if rref.contains(s)]
            self.items += [(False, s) for s in page.snippets["without"] if rref.contains(s)]
        else:
            gref = sm.Ref(page.gold)
            self.items = []
            for line in page.raw.splitlines():
                lt = sm.tok(line)
                g = gref.matches(lt)
                if g is not None:
                    self.items.append((g, lt))

    def counts(self, keep: list[bool]) -> Counter:
        key = bytes(keep)
        c = self.cache.get(key)
        if c is not None:
            return c
        pred = "\n\n".join(line for line, k in zip(self.page.lines, keep) if k)
        ref = self.sm.Ref(pred)
        c = Counter()
        if self.page.source == SNIPPET_SET:
            for is_with, s in self.items:
                k = ref.contains(s)
                c["tp" if is_with and k else "fp" if k else "fn" if is_with else "tn"] += 1
        else:
            for g, lt in self.items:
                k = ref.matches(lt)
                c["tp" if g and k else "fp" if k else "fn" if g else "tn"] += 1
        if len(self.cache) > 64:
            self.cache.clear()
        self.cache[key] = c
        return c


def prf(c: Counter) -> tuple[float, float, float]:
    p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


class Scorer:
    def __init__(self, pages: list[Page]):
        self.sm = load_score_module()
        self.pages = pages
        self.per = [_PageScore(p, self.sm) for p in pages]

    def counts(self, reasons_of, groups=None) -> dict[str, Counter]:
        """Summed counts per group (default: source; also "fr" pages of the snippet set)."""
        out: dict[str, Counter] = {}
        for page, ps in zip(self.pages, self.per):
            reasons = reasons_of(page)
            keep = [r is None for r in reasons]
            c = ps.counts(keep)
            for g in (groups(page) if groups else _groups(page)):
                out.setdefault(g, Counter()).update(c)
        return out

    def f1(self, reasons_of) -> dict[str, float]:
        return {g: prf(c)[2] for g, c in self.counts(reasons_of).items()}

    def table(self, reasons_of, base=None, label="") -> dict[str, float]:
        res = {g: prf(c) for g, c in self.counts(reasons_of).items()}
        order = [s for s in (SNIPPET_SET, "snippet:fr", *GOLD_SETS) if s in res]
        f = {g: res[g][2] for g in order}
        gold = [f[s] for s in GOLD_SETS if s in f]
        mean = sum(gold) / len(gold) if len(gold) == 4 else float("nan")
        parts = []
        for g in order:
            delta = f"{f[g] - base[g]:+.3f}" if base else ""
            parts.append(f"{g[:6]} {f[g]:.3f}{delta}")
        delta = f"{mean - base['mean4']:+.3f}" if base and "mean4" in base else ""
        print(f"{label:<28} " + "  ".join(parts) + f"  mean4 {mean:.3f}{delta}", flush=True)
        f["mean4"] = mean
        return f


def _groups(page: Page):
    yield page.source
    if page.source == SNIPPET_SET and page.lang == "fr":
        yield "snippet:fr"


def lost(pages: list[Page], only: str | None, show: int) -> None:
    """Article lines removed (label 1, reason set) and chrome kept, by reason."""
    import random

    by = Counter()
    kept_bad = Counter()
    examples: dict[str, list] = {}
    total = Counter()
    for page in pages:
        if only and page.source != only:
            continue
        for i, (line, r, lab) in enumerate(zip(page.lines, page.reasons, page.label)):
            if lab is None:
                continue
            total[lab] += 1
            if lab and r is not None:
                by[r] += 1
                examples.setdefault(r, []).append((page.name, i, page.p[i], page.in_block[i], page.in_core[i], line[:140]))
            elif not lab and r is None:
                kept_bad["classified" if page.classified else "not classified"] += 1
    print(f"labelled lines: {total[1]} article, {total[0]} chrome; article lines removed by reason:")
    for r, n in by.most_common():
        print(f"  {r:<24} {n:6d}")
    print("chrome kept:", dict(kept_bad))
    rnd = random.Random(0)
    for r, _ in by.most_common(8):
        ex = examples[r]
        print(f"--- {r}")
        for e in rnd.sample(ex, min(show, len(ex))):
            p = "-" if e[2] is None else f"{e[2]:.2f}"
            print(f"  {e[0][:28]:<28} {e[1]:4d} p={p} blk={int(e[3])}{int(e[4])} | {e[5]}")


def cores(pages: list[Page]) -> None:
    """Per source, the pages the classifier reads whose article lies mostly outside the main block's
    core (more labelled article lines outside it than in it, at least 3): how many, and their share
    of the source's errors (score.py's fp + fn), by where the article lies (above / below the core)."""
    sm = load_score_module()
    for source in SOURCES:
        total = Counter()
        for page in pages:
            if page.source != source or not page.classified:
                continue
            c = _PageScore(page, sm).counts([r is None for r in page.reasons])
            errors = c["fp"] + c["fn"]
            total["pages"] += 1
            total["errors"] += errors
            core = [i for i, b in enumerate(page.in_core) if b]
            if not core:
                continue
            inside = sum(1 for i in core if page.label[i])
            outside = [i for i, lab in enumerate(page.label) if lab and not page.in_core[i]]
            if len(outside) > inside and len(outside) >= 3:
                above = sum(1 for i in outside if i < core[0])
                where = "above" if 2 * above > len(outside) else "below"
                total[where] += 1
                total[where + " errors"] += errors
        share = lambda k: total[k + " errors"] / max(1, total["errors"])  # noqa: E731
        print(f"{source:<12} {total['pages']:5d} pages, {total['errors']:6d} errors; article mostly above the core: "
              f"{total['above']:4d} pages, {share('above'):.0%} of the errors; below: {total['below']:4d} pages, "
              f"{share('below'):.0%}")


def grid(pages: list[Page], tries: list[str], cache: Path | None, dump_path: Path | None = None) -> None:
    """The leave-one-source-out choice of decision constants (the module docstring's ``grid``).
    ``cache`` holds the scores of one dump (``dump_path``, by size and time): another dump starts it afresh."""
    import itertools

    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages import linefeatures as lf
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage

    stage = BoilerplateStage(load_config(None, []).boilerplate)
    content = stage._content
    names, values = [], []
    for t in tries:
        name, _, listed = t.partition("=")
        if name != "core_share" and not hasattr(content, name):
            raise SystemExit(f"--try {t}: ContentClassifier has no constant {name!r}")
        names.append(name)
        values.append([float(v) for v in listed.split(",")])
    today = tuple(lf._CORE_SHARE if n == "core_share" else float(getattr(content, n)) for n in names)
    scorer = Scorer(pages)
    stamp = f"{dump_path.stat().st_size}:{dump_path.stat().st_mtime_ns}" if dump_path else ""
    saved = json.loads(cache.read_text()) if cache and cache.exists() else {}
    done: dict[str, dict[str, float]] = saved.get("scores", {}) if saved.get("dump") == stamp else {}
    results: dict[tuple, dict[str, float]] = {}

    def use(combo: tuple) -> None:
        for n, v in zip(names, combo):
            if n == "core_share":
                lf._CORE_SHARE = v
            else:
                setattr(content, n, type(getattr(content, n))(v))

    for combo in itertools.product(*values):
        key = json.dumps(dict(zip(names, combo)), sort_keys=True)
        if key not in done:
            use(combo)
            try:
                reasons = {}
                for page in pages:
                    if page.lines:
                        bc = stage._classifier_for(page.packs, True)
                        reasons[page.name] = bc.classify_batch(page.lines, [(0, len(page.lines))])
            finally:
                use(today)  # the module's and classifier's constants as they were (other code in this process)
            done[key] = scorer.f1(lambda p: reasons.get(p.name, []))
            if cache:
                cache.write_text(json.dumps({"dump": stamp, "scores": done}, indent=0))
        results[combo] = done[key]
        f = results[combo]
        print("  ".join(f"{n} {v:g}" for n, v in zip(names, combo)) + "   "
              + "  ".join(f"{s[:6]} {f[s]:.4f}" for s in SOURCES)
              + f"   mean4 {sum(f[s] for s in GOLD_SETS) / len(GOLD_SETS):.4f}", flush=True)
    print(f"leave-one-source-out (today: {dict(zip(names, today))}):")
    left = left_out_choices(results, today)
    for out, (best, score) in left.items():
        print(f"  {out:<12} chosen {dict(zip(names, best))}: {score:.4f} (today's {results.get(today, {}).get(out, float('nan')):.4f})")
    print(f"  left-out mean of the four gold sets {sum(left[s][1] for s in GOLD_SETS) / len(GOLD_SETS):.4f}")


def left_out_choices(results: dict[tuple, dict[str, float]], today: tuple, sources=SOURCES) -> dict[str, tuple[tuple, float]]:
    """For each source: (the combination with the best mean F1 over the other sources, the left-out
    source's F1 under it). Ties go to ``today`` (then to the first combination tried)."""
    left = {}
    for out in sources:
        rest = [s for s in sources if s != out]
        best = max(results, key=lambda c: (round(sum(results[c][s] for s in rest), 9), c == today))
        left[out] = (best, results[best][out])
    return left


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["dump", "score", "lost", "cores", "grid"])
    ap.add_argument("path", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--only")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--show", type=int, default=12)
    ap.add_argument("--try", dest="tries", action="append", default=[], help="grid: NAME=V1,V2,... (repeatable)")
    ap.add_argument("--cache", type=Path, help="grid: keep each combination's scores in this JSON file")
    a = ap.parse_args()
    if a.command == "dump":
        t = time.perf_counter()
        pages = dump(a.path, a.overrides, [a.only] if a.only else SOURCES, a.limit)
        print(f"{len(pages)} pages dumped in {time.perf_counter() - t:.0f} s")
    elif a.command == "score":
        pages = load(a.path)
        t = time.perf_counter()
        Scorer(pages).table(lambda p: p.reasons, label="dump")
        print(f"scored in {time.perf_counter() - t:.0f} s")
    elif a.command == "cores":
        cores(load(a.path))
    elif a.command == "grid":
        grid(load(a.path), a.tries, a.cache, a.path)
    else:
        lost(load(a.path), a.only, a.show)


if __name__ == "__main__":
    from bench import whatif  # the importable module's classes, so that dumps load anywhere

    whatif.main()
