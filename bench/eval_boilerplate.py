"""Boilerplate quality on real pages, through the real pipeline: snippet F1 and line F1 per benchmark.

Two read-only page sets: ``../shared/eval/boilerplate/pages`` (``--pages``; 990 pages, each with
``NAME.snippets.json``: snippets of main content and of boilerplate; set name "trafilatura") and
``../shared/eval/boilerplate-gold/pages`` (``--set-dir``; 2,265 pages of four benchmarks, dragnet,
cleaneval, cportal and readability, each with ``NAME.gold.txt``, the full main content). Both hold
``NAME.raw.txt`` (all visible text of a real web page, one block per line) and ``manifest.json``
(each page's set and language). This command

1. copies each ``NAME.raw.txt`` to a temporary raw folder as ``NAME.txt``;
2. runs the real ``corpusclean run --raw TMP --out TMP2 --quiet`` (Prefect, every stage, dedup
   included) once per page set — or, with ``--stage-only``, just repair + paragraphs + boilerplate
   in-process (no Prefect, no language, no dedup: seconds instead of minutes, for iterating);
3. writes each document's clean ``text`` to ``PRED/NAME.txt``;
4. scores with the shared ``score.py`` (``--json``): the snippet set overall, per language (de, en,
   es, fr, the others together) and per half of the pages (a fixed split by a hash of the page
   name: ``fit`` and ``check``); the gold sets per benchmark (line F1, with token-weighted and
   bag-of-words F1), and their French pages where there are some.

    .venv/bin/python bench/eval_boilerplate.py                  # the reported figures (make eval)
    .venv/bin/python bench/eval_boilerplate.py --stage-only     # fast iteration
    .venv/bin/python bench/eval_boilerplate.py --only dragnet --stage-only
    .venv/bin/python bench/eval_boilerplate.py --lang fr --limit 10 --keep /tmp/pred
    .venv/bin/python bench/eval_boilerplate.py --speed          # boilerplate stage MB/s only
    .venv/bin/python bench/eval_boilerplate.py --fit --lobo     # refit (make fit)

``--fit`` fits the two logistic models of ``tasks/stages/linefeatures.py`` on five sources and writes
``tasks/stages/models/content_classifier.json``: the four gold sets (every line no rule flags, labelled
article text (1) when it matches the page's gold by score.py's own rule, imported from score.py,
chrome (0) otherwise) and the "fit" half of the snippet set (lines containing a "with" snippet
are 1, a "without" snippet 0). Each source has the same total weight (dragnet's 1,353 pages
would otherwise dominate). The decision constants of ``ContentClassifier`` (threshold,
block_threshold, outside_margin, sandwich_high/low) are then chosen by coordinate ascent on the mean per-source
F1 of the training sources. ``--lobo`` prints the leave-one-benchmark-out table: for each of the
five sources, a model fitted (weights and constants) without it, scored on it with score.py
(stage-only), beside today's model file: nothing fitted on a page's own labels is scored on it.

Scoring subsets (a language, a half, ``--limit``) uses a temporary set folder holding the
subset's ``manifest.json`` and symbolic links to the pages: nothing is copied out of the sets,
and ``score.py`` runs unmodified.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
  # noqa: E402
from corpusclean.tasks.corpus import corpus_state  # noqa: E402

DEFAULT_PAGES = REPO.parent / "shared" / "eval" / "boilerplate" / "pages"
DEFAULT_GOLD = REPO.parent / "shared" / "eval" / "boilerplate-gold" / "pages"
SCORE_PY = REPO.parent / "shared" / "eval" / "boilerplate" / "score.py"
SNIPPET_SET = "trafilatura"  # the 990-page snippet set's name in its manifest
GOLD_SETS = ("dragnet", "cleaneval", "cportal", "readability")
SOURCES = (SNIPPET_SET, *GOLD_SETS)
MAIN_LANGS = ("de", "en", "es", "fr")


def half_of(name: str) -> str:
    """A fixed, name-based split of the pages into two halves ("fit" and "check")."""
    return "fit" if hashlib.sha1(name.encode("utf-8")).digest()[0] % 2 == 0 else "check"


def load_manifest(pages: Path) -> list[dict]:
    return json.loads((pages / "manifest.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Predictions


LAST_RUN: dict = {}  # the last real run's CPU seconds (command_cpu) and its report's stages


def predict_pipeline(pages: Path, manifest: list[dict], pred: Path, work: Path, overrides: list[str],
                     raw_ready: bool = False) -> float:
    """The real command on every page; clean text per page into ``pred``. Returns the wall time."""
    raw, out = work / "raw", work / "clean"
    if not raw_ready:
        raw.mkdir()
        for m in manifest:
            shutil.copyfile(pages / f"{m['name']}.raw.txt", raw / f"{m['name']}.txt")
    cmd = [str(REPO / ".venv" / "bin" / "corpusclean"), "run", "--raw", str(raw), "--out", str(out), "--quiet"]
    for override in overrides:
        cmd += ["--set", override]
    started = time.perf_counter()
    children = os.times()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"corpusclean failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    # CPU of the command's process tree (every process it waited for: workers, API server)
    LAST_RUN["command_cpu"] = (after.children_user - children.children_user) + (after.children_system - children.children_system)
    report_path = out / "report.json"
    if report_path.is_file():
        LAST_RUN["stages"] = json.loads(report_path.read_text(encoding="utf-8")).get("stages", {})
    table = corpus_state.read_table(out, "documents", columns=["source_path", "text"])
    for path, text in zip(table.column("source_path").to_pylist(), table.column("text").to_pylist()):
        (pred / path).write_text(text or "", encoding="utf-8")
    return wall


def stage_only_texts(texts: list[str], overrides: list[str], content=None) -> list[str]:
    """Repair, paragraphs and boilerplate in-process; the kept paragraphs of each text (no dedup).
    ``content``: a ``ContentClassifier`` to use instead of the configured one (fitting)."""
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage
    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages.paragraphs import ParagraphStage
    from corpusclean.tasks.plumbing.records import Batch, Document
    from corpusclean.tasks.stages.repair import RepairStage
    from corpusclean.tasks.plumbing.stage import run_stages

    config = load_config(None, overrides)
    boilerplate = BoilerplateStage(config.boilerplate)
    if content is not None and boilerplate.classifier is not None:
        boilerplate.classifier.content = content
    stages = [RepairStage(use_ftfy=config.repair.ftfy), ParagraphStage(), boilerplate]
    docs = [Document(f"d{i}", f"{i}.txt", "0" * 64, 0, t, "utf-8") for i, t in enumerate(texts)]
    batch = run_stages(Batch(docs), stages)
    p = batch.paragraphs
    kept: list[list[str]] = [[] for _ in docs]  # by input position (repair may reject empty documents)
    index = [int(d.doc_id[1:]) for d in batch.docs]
    for pos, text, chrome in zip(p.doc_pos, p.text, p.is_boilerplate):
        if not chrome:
            kept[index[pos]].append(text)
    return ["\n\n".join(k) for k in kept]


def predict_stage_only(pages: Path, manifest: list[dict], pred: Path, overrides: list[str], content=None) -> float:
    from corpusclean.tasks.stages.read import decode_bytes

    started = time.perf_counter()
    texts = [decode_bytes((pages / f"{m['name']}.raw.txt").read_bytes())[0] for m in manifest]
    for m, text in zip(manifest, stage_only_texts(texts, overrides, content)):
        (pred / f"{m['name']}.txt").write_text(text, encoding="utf-8")
    return time.perf_counter() - started


def _read_html_page(args: tuple[str, str, list[str]]):
    """One gold page's HTML through the real reader (trafilatura): its Document, or None."""
    path, name, overrides = args
    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages.read import SourceFile, read_source

    config = load_config(None, overrides)
    for item in read_source(SourceFile(Path(path), f"{name}.html.gz", os.path.getsize(path)), config.read):
        return item if hasattr(item, "text") else None
    return None


def predict_html(pages: Path, manifest: list[dict], pred: Path, overrides: list[str], workers: int,
                 alone: bool = False) -> tuple[float, float, int]:
    """``--html --stage-only``: each page's ``html/NAME.html.gz`` through the real HTML reader (in
    ``workers`` processes), then repair + paragraphs + boilerplate in-process; with ``alone`` the
    extracted text as it is (trafilatura alone). Returns (wall seconds, extraction seconds, HTML bytes)."""
    import gzip
    from multiprocessing import Pool

    started = time.perf_counter()
    jobs = [(str(pages / "html" / f"{m['name']}.html.gz"), m["name"], overrides) for m in manifest]
    html_bytes = sum(len(gzip.decompress((pages / "html" / f"{m['name']}.html.gz").read_bytes())) for m in manifest)
    with Pool(workers) as pool:
        docs = pool.map(_read_html_page, jobs, chunksize=8)
    extracted = time.perf_counter() - started
    if alone:
        texts = [d.text if d is not None else "" for d in docs]
    else:
        texts = stage_only_docs([d for d in docs if d is not None], overrides)
        it = iter(texts)
        texts = [next(it) if d is not None else "" for d in docs]
    for m, text in zip(manifest, texts):
        (pred / f"{m['name']}.txt").write_text(text, encoding="utf-8")
    return time.perf_counter() - started, extracted, html_bytes


def stage_only_docs(docs: list, overrides: list[str]) -> list[str]:
    """Repair, paragraphs and boilerplate on ready Documents (e.g. extracted from HTML); kept text of each."""
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage
    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages.paragraphs import ParagraphStage
    from corpusclean.tasks.plumbing.records import Batch
    from corpusclean.tasks.stages.repair import RepairStage
    from corpusclean.tasks.plumbing.stage import run_stages

    config = load_config(None, overrides)
    for i, d in enumerate(docs):
        d.doc_id = f"d{i}"
    stages = [RepairStage(use_ftfy=config.repair.ftfy), ParagraphStage(), BoilerplateStage(config.boilerplate)]
    batch = run_stages(Batch(list(docs)), stages)
    p = batch.paragraphs
    kept: list[list[str]] = [[] for _ in docs]
    index = [int(d.doc_id[1:]) for d in batch.docs]
    for pos, text, chrome in zip(p.doc_pos, p.text, p.is_boilerplate):
        if not chrome:
            kept[index[pos]].append(text)
    return ["\n\n".join(k) for k in kept]


def predict_html_pipeline(pages: Path, manifest: list[dict], pred: Path, work: Path, overrides: list[str]) -> tuple[float, int]:
    """``--html``: the real ``corpusclean run`` over a raw folder of the pages' ``NAME.html.gz``."""
    import gzip

    raw = work / "raw"
    raw.mkdir()
    html_bytes = 0
    for m in manifest:
        source = pages / "html" / f"{m['name']}.html.gz"
        shutil.copyfile(source, raw / f"{m['name']}.html.gz")  # a copy: a link out of the raw folder is rejected (symlink)
        html_bytes += len(gzip.decompress(source.read_bytes()))
    wall = predict_pipeline(pages, manifest, pred, work, overrides, raw_ready=True)
    for m in manifest:  # documents are named after their raw file
        src = pred / f"{m['name']}.html.gz"
        if src.exists():
            src.rename(pred / f"{m['name']}.txt")
    return wall, html_bytes


# ---------------------------------------------------------------------------------------------
# Scoring


def score_subset(pages: Path, subset: list[dict], pred: Path, work: Path, label: str) -> dict | None:
    """``score.py --json`` on a subset of the pages (temporary manifest + symlinks to the pages)."""
    if not subset:
        return None
    set_dir = work / f"set-{label}"
    set_dir.mkdir()
    for m in subset:
        for suffix in (".raw.txt", ".snippets.json" if m.get("kind") != "gold" else ".gold.txt"):
            os.symlink(pages / f"{m['name']}{suffix}", set_dir / f"{m['name']}{suffix}")
    (set_dir / "manifest.json").write_text(json.dumps(subset), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(SCORE_PY), str(pred), "--set-dir", str(set_dir), "--json"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"score.py failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def report(pages: Path, manifest: list[dict], pred: Path, work: Path, halves: bool) -> dict[str, dict]:
    groups: list[tuple[str, list[dict]]] = [("all", manifest)]
    for lang in MAIN_LANGS:
        groups.append((lang, [m for m in manifest if m["lang"] == lang]))
    groups.append(("others", [m for m in manifest if m["lang"] not in MAIN_LANGS]))
    if halves:
        for half in ("fit", "check"):
            groups.append((f"half:{half}", [m for m in manifest if half_of(m["name"]) == half]))
            groups.append((f"half:{half}:fr", [m for m in manifest if half_of(m["name"]) == half and m["lang"] == "fr"]))
    results: dict[str, dict] = {}
    for label, subset in groups:
        res = score_subset(pages, subset, pred, work, label.replace(":", "-"))
        if res is not None:
            results[label] = res
    return results


def report_gold(set_dir: Path, manifest: list[dict], pred: Path, work: Path) -> dict[str, dict]:
    """Line-level scores of gold pages: per benchmark, and its French pages where there are some."""
    results: dict[str, dict] = {}
    for name in GOLD_SETS:
        subset = [m for m in manifest if m["set"] == name]
        for label, sub in ((name, subset), (f"{name}:fr", [m for m in subset if m["lang"] == "fr"])):
            res = score_subset(set_dir, sub, pred, work, "gold-" + label.replace(":", "-"))
            if res is not None:
                results[label] = res
    return results


def print_gold_table(results: dict[str, dict]) -> None:
    print(f"{'gold set':<14} {'pages':>5} {'lines':>7} {'P':>7} {'R':>7} {'line F1':>7} {'tokw F1':>7} {'bow F1':>7}")
    for label, r in results.items():
        print(f"{label:<14} {r['pages']:>5} {r['raw_lines']:>7} {r['line_P']:>7.3f} {r['line_R']:>7.3f} "
              f"{r['line_F1']:>7.3f} {r['tokw_F1']:>7.3f} {r['bow_F1']:>7.3f}")
    sets = [results[name]["line_F1"] for name in GOLD_SETS if name in results]
    if len(sets) == len(GOLD_SETS):
        print(f"{'mean of 4':<14} {'':>5} {'':>7} {'':>7} {'':>7} {sum(sets) / len(sets):>7.3f}")


def print_table(results: dict[str, dict]) -> None:
    print(f"{'subset':<14} {'pages':>5} {'snippets':>8} {'P':>7} {'R':>7} {'F1':>7}")
    for label, r in results.items():
        print(f"{label:<14} {r['pages']:>5} {r.get('snip_scored', 0):>8} {r.get('snip_P', 0):>7.3f} "
              f"{r.get('snip_R', 0):>7.3f} {r.get('snip_F1', 0):>7.3f}")


# ---------------------------------------------------------------------------------------------
# Throughput of the boilerplate stage alone


def speed(corpus: Path, overrides: list[str], repeat: int) -> None:
    """MB/s of the boilerplate stage, in-process: on generated news pages (bench/corpus_gen.py, JSON
    lines; generated if absent) or on a folder of .txt pages."""
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage
    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages.paragraphs import ParagraphStage
    from corpusclean.tasks.plumbing.records import Batch, Document

    texts: list[str] = []
    if any(corpus.glob("*.txt")):  # a folder of pages (e.g. the evaluation set's *.raw.txt)
        texts = [path.read_text(encoding="utf-8", errors="replace") for path in sorted(corpus.glob("*.txt"))]
    else:
        if not (corpus / ".complete").exists():
            from bench.corpus_gen import generate

            print(f"generating {corpus} ...", flush=True)
            (corpus / ".complete").write_text(json.dumps(generate(corpus, 20.0)))
        for path in sorted(corpus.glob("*.jsonl")):
            with path.open(encoding="utf-8") as f:
                texts.extend(json.loads(line)["text"] for line in f if line.strip())
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    config = load_config(None, overrides)
    batches = []
    for start in range(0, len(texts), 500):
        docs = [Document(f"d{i}", "x", "0" * 64, i, t, "utf-8") for i, t in enumerate(texts[start:start + 500])]
        batches.append(ParagraphStage()(Batch(docs)))
    best = float("inf")
    for _ in range(repeat):
        stage = BoilerplateStage(config.boilerplate)
        for batch in batches:
            stage(batch)
        best = min(best, stage.stats.seconds)
    flagged = sum(v for k, v in stage.stats.counts.items() if k.startswith("boilerplate:"))
    print(f"boilerplate stage: {mb:.1f} MB, {len(texts)} pages, best of {repeat}: {best:.2f} s = {mb / best:.2f} MB/s "
          f"({flagged} of {flagged + stage.stats.counts['kept']} paragraphs flagged)")


# ---------------------------------------------------------------------------------------------
# Fitting the line classifier on several benchmarks


def _tokens(text: str) -> list[str]:
    import re
    import unicodedata

    return re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower())


def line_labels(lines: list[str], snippets: dict) -> list[int | None]:
    """1 for a line containing a "with" snippet, 0 for a "without" one (0 wins), else None."""
    joined = [" " + " ".join(_tokens(line)) + " " for line in lines]
    labels: list[int | None] = [None] * len(lines)
    for kind, value in (("with", 1), ("without", 0)):
        for snippet in snippets.get(kind, []):
            key = " " + " ".join(_tokens(snippet)) + " "
            if not key.strip():
                continue
            for i, line in enumerate(joined):
                if key in line and (labels[i] is None or value == 0):
                    labels[i] = value
    return labels


def load_score_module():
    """The shared ``score.py`` (read, never copied): its ``Ref`` / ``tok`` line-matching rule and ``score``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_shared_boilerplate_score", SCORE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FitPage:
    """One page ready for fitting: its lines, the rules' reasons, the line-model inputs, labels."""

    __slots__ = ("name", "source", "train", "lines", "reasons", "doc", "labels", "gold", "snippets")

    def __init__(self, name, source, train, lines, reasons, doc, labels, gold, snippets):
        self.name, self.source, self.train = name, source, train
        self.lines, self.reasons, self.doc = lines, reasons, doc
        self.labels = labels  # per unflagged line (doc.index): 1 article text, 0 chrome, None unknown
        self.gold = gold  # gold pages: per line, score.py's "matches the gold" (None: no tokens)
        self.snippets = snippets  # snippet pages: (is_with, indices of the lines containing it) per snippet


def prepare_pages(source: str, set_dir: Path, manifest: list[dict], overrides: list[str], sm) -> list[FitPage]:
    """Lines as the stage sees them (repair + paragraphs), the rules' reasons, features and labels.

    Gold pages: a line is article text (1) when it matches the page's gold by score.py's rule
    (``Ref.matches``), chrome (0) otherwise. Snippet pages: as ``line_labels``; only the "fit"
    half of the 990 pages is used for training (``train``), all of them for scoring.
    """
    from corpusclean.tasks.stages import linefeatures as lf
    from corpusclean.tasks.stages.boilerplate import BoilerplateClassifier, load_rule_packs
    from corpusclean.tasks.config import load_config
    from corpusclean.tasks.stages.paragraphs import split_paragraphs
    from corpusclean.tasks.stages.read import decode_bytes
    from corpusclean.tasks.stages.repair import repair_text

    config = load_config(None, overrides)
    rules = BoilerplateClassifier(load_rule_packs(config.boilerplate.rule_packs, config.boilerplate.extra_rule_files))
    out = []
    for m in manifest:
        text, _ = repair_text(decode_bytes((set_dir / f"{m['name']}.raw.txt").read_bytes())[0], use_ftfy=config.repair.ftfy)
        lines = [text[a:b] for a, b in split_paragraphs(text)]
        if not lines:
            continue
        reasons = rules.classify_rules(lines)
        doc = lf.document_lines(lines, reasons)
        gold = snippets = None
        if m.get("kind") == "gold":
            ref = sm.Ref((set_dir / f"{m['name']}.gold.txt").read_text(encoding="utf-8", errors="replace"))
            gold = [ref.matches(sm.tok(line)) for line in lines]
            labels = [None if gold[i] is None else int(gold[i]) for i in doc.index]
            train = True
        else:
            sn = json.loads((set_dir / f"{m['name']}.snippets.json").read_text(encoding="utf-8"))
            per_line = line_labels(lines, sn)
            labels = [per_line[i] for i in doc.index]
            joined = [" " + " ".join(sm.tok(line)) + " " for line in lines]
            snippets = []
            for kind in ("with", "without"):
                for snippet in sn.get(kind, []):
                    key = " " + " ".join(sm.tok(snippet)) + " "
                    if key.strip():
                        hits = [i for i, line in enumerate(joined) if key in line]
                        if hits:
                            snippets.append((kind == "with", hits))
            train = half_of(m["name"]) == "fit"
        out.append(FitPage(m["name"], source, train, lines, reasons, doc, labels, gold, snippets))
    return out


def _fit_logistic(X, y, l2: float = 1.0, sample_weight=None):
    import numpy as np
    from scipy.optimize import minimize

    sw = np.ones(len(y)) if sample_weight is None else sample_weight

    def loss(w):
        z = X @ w
        penalty = np.r_[0.0, w[1:]]  # the bias is not penalised
        value = np.sum(sw * (np.logaddexp(0.0, z) - y * z)) + l2 * np.sum(penalty**2)
        grad = X.T @ (sw * (1.0 / (1.0 + np.exp(-z)) - y)) + 2.0 * l2 * penalty
        return value, grad

    return minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x


def _source_weights(sources: list[str], snippet_share: float | None = None):
    """Each source the same total weight (its lines equally), scaled so the weights sum to the number of
    lines; ``snippet_share``: the snippet set's share of the total instead (the gold sets share the rest)."""
    import numpy as np

    sources = np.array(sources)
    names, counts = np.unique(sources, return_counts=True)
    share = {n: 1.0 / len(names) for n in names}
    if snippet_share is not None and SNIPPET_SET in share and len(names) > 1:
        share = {n: snippet_share if n == SNIPPET_SET else (1.0 - snippet_share) / (len(names) - 1) for n in names}
    per = {n: len(sources) * share[n] / c for n, c in zip(names, counts)}
    return np.array([per[s] for s in sources])


def fit_weights(pages: list[FitPage], l2: float, snippet_share: float | None = None) -> tuple[tuple[float, ...], tuple[float, ...], int]:
    """The two logistic models fitted on the labelled unflagged lines of ``pages`` (training pages only)."""
    import numpy as np

    from corpusclean.tasks.stages import linefeatures as lf

    pages = [p for p in pages if p.train]
    X, y, src = [], [], []
    for p in pages:
        for v, label in zip(p.doc.vectors, p.labels):
            if label is not None:
                X.append(v)
                y.append(label)
                src.append(p.source)
    X, y, sw = np.array(X), np.array(y, float), _source_weights(src, snippet_share)
    line_weights = _fit_logistic(X, y, l2, sw)
    C = []
    for p in pages:
        _, vectors = lf.document_context(p.doc, tuple(line_weights))
        C.extend(v for v, label in zip(vectors, p.labels) if label is not None)
    context_weights = _fit_logistic(np.array(C), y, l2, sw)
    return tuple(map(float, line_weights)), tuple(map(float, context_weights)), len(y)


class _Model:
    """Fitted weights and decision constants, swapped into ``tasks.stages.linefeatures`` for a scoring run."""

    def __init__(self, line_weights, context_weights, decision):
        self.line_weights, self.context_weights, self.decision = line_weights, context_weights, dict(decision)

    def classifier(self, **decision):
        from corpusclean.tasks.stages.linefeatures import ContentClassifier

        return ContentClassifier(**{**self.decision, **decision})

    def __enter__(self):
        from corpusclean.tasks.stages import linefeatures as lf

        self._saved = (lf.LINE_WEIGHTS, lf.CONTEXT_WEIGHTS, lf.document_context.__defaults__)
        lf.LINE_WEIGHTS, lf.CONTEXT_WEIGHTS = self.line_weights, self.context_weights
        lf.document_context.__defaults__ = (self.line_weights,)
        return self

    def __exit__(self, *exc):
        from corpusclean.tasks.stages import linefeatures as lf

        lf.LINE_WEIGHTS, lf.CONTEXT_WEIGHTS, lf.document_context.__defaults__ = self._saved


class _Memo:
    """While choosing decision constants: the real ``ContentClassifier`` runs on memoised features
    (per page object) so that only its decision rules are re-run for each candidate constant."""

    def __enter__(self):
        from corpusclean.tasks.stages import linefeatures as lf

        self._saved = {k: getattr(lf, k) for k in ("document_lines", "document_context", "_probabilities", "_running_text")}
        memo: dict = {}

        def wrap(name, fn):
            def cached(first, *rest):
                key = (name, id(first))
                if key not in memo:
                    memo[key] = (first, fn(first, *rest))  # keeps ``first`` alive: ids stay unique
                return memo[key][1]
            return cached

        for name, fn in self._saved.items():
            setattr(lf, name, wrap(name, fn))
        return self

    def __exit__(self, *exc):
        from corpusclean.tasks.stages import linefeatures as lf

        for name, fn in self._saved.items():
            setattr(lf, name, fn)


def fast_scores(pages: list[FitPage], content) -> dict[str, float]:
    """Per source, the F1 of ``content``'s decisions: line F1 (gold pages; a line counts as kept when the
    stage keeps it) or snippet F1 (a snippet is kept when a kept line contains it). Close to score.py's
    figures, cheap enough to choose decision constants."""
    from collections import Counter

    counts: dict[str, Counter] = {}
    for p in pages:
        c = counts.setdefault(p.source, Counter())
        kept = [r is None for r in content.classify(p.lines, p.reasons)]
        if p.gold is not None:
            for g, k in zip(p.gold, kept):
                if g is not None:
                    c["tp" if g and k else "fp" if k else "fn" if g else "tn"] += 1
        else:
            for is_with, hits in p.snippets:
                k = any(kept[i] for i in hits)
                c["tp" if is_with and k else "fp" if k else "fn" if is_with else "tn"] += 1
    return f1_by_source(counts)


def f1_by_source(counts: dict) -> dict[str, float]:
    """F1 per source from its confusion counts (``tp``, ``fp``, ``fn``)."""
    out = {}
    for source, c in counts.items():
        precision = c["tp"] / max(1, c["tp"] + c["fp"])
        recall = c["tp"] / max(1, c["tp"] + c["fn"])
        out[source] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return out


DECISION_GRID = {
    "threshold": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65),
    "block_threshold": (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4),
    "outside_margin": (0.0, 0.05, 0.1, 0.15, 0.2),
    "sandwich_high": (0.5, 0.6, 0.7, 0.75, 0.8, 0.9),
    "sandwich_low": (0.0, 0.05, 0.1, 0.2, 0.3),
}


def choose_decision(pages: list[FitPage], model: _Model, start: dict[str, float], passes: int = 2) -> tuple[dict, float]:
    """Decision constants maximising the mean of the per-source F1 on ``pages`` (the training sources):
    coordinate ascent over ``DECISION_GRID``. ``block_threshold`` is capped by ``threshold`` (as the
    classifier does)."""
    decision = dict(start)
    with model, _Memo():
        def objective(d):
            scores = fast_scores(pages, model.classifier(**d))
            return sum(scores.values()) / len(scores)

        best = objective(decision)
        for _ in range(passes):
            improved = False
            for key, grid in DECISION_GRID.items():
                for value in grid:
                    if value == decision[key]:
                        continue
                    trial = {**decision, key: value}
                    if trial["block_threshold"] > trial["threshold"]:
                        continue
                    f = objective(trial)
                    if f > best + 1e-6:
                        best, decision, improved = f, trial, True
            if not improved:
                break
    return decision, best


def honest_score(source: str, set_dir: Path, manifest: list[dict], model: _Model | None, overrides: list[str], sm) -> dict:
    """``score.py``'s figures for one whole source with the stage-only pipeline and ``model``
    (``None``: the model file as it is)."""
    subset = [m for m in manifest if m["set"] == source]
    with tempfile.TemporaryDirectory(prefix="eval-boilerplate-fit-") as tmp:
        pred = Path(tmp)
        if model is None:
            predict_stage_only(set_dir, subset, pred, overrides)
        else:
            with model:
                predict_stage_only(set_dir, subset, pred, overrides, model.classifier())
        res = sm.score(str(pred), str(set_dir), only=source)
    return res


def _f1_of(source: str, res: dict) -> float:
    return res["snip_F1"] if source == SNIPPET_SET else res["line_F1"]


def fit(pages_dir: Path, gold_dir: Path, overrides: list[str], l2: float, lobo: bool, write: Path | None,
        tune_decision: bool = True, snippet_share: float | None = None, only: str | None = None) -> None:
    """Fit on all five sources (and write the model file), and/or the leave-one-benchmark-out table."""
    import datetime

    from corpusclean.tasks.stages import linefeatures as lf

    sm = load_score_module()
    started = time.perf_counter()
    dirs = {SNIPPET_SET: pages_dir, **{name: gold_dir for name in GOLD_SETS}}
    manifests = {SNIPPET_SET: load_manifest(pages_dir), "gold": load_manifest(gold_dir)}
    pages: list[FitPage] = []
    for source in SOURCES:
        man = manifests[SNIPPET_SET if source == SNIPPET_SET else "gold"]
        pages += prepare_pages(source, dirs[source], [m for m in man if m["set"] == source], overrides, sm)
    print(f"features of {len(pages)} pages: {time.perf_counter() - started:.0f} s", flush=True)
    # Every decision constant the model file holds (the grid's, tuned below, and the others, e.g.
    # gap_lines / gap_floor, chosen separately with bench/whatif.py): a refit keeps them all.
    today_decision = {k: getattr(lf.ContentClassifier(), k) for k in (*DECISION_GRID, *lf.DECISION)}

    def fit_on(train_pages):
        line_w, ctx_w, n = fit_weights(train_pages, l2, snippet_share)
        model = _Model(line_w, ctx_w, today_decision)
        if tune_decision:
            model.decision, _ = choose_decision(train_pages, model, today_decision)
        return model, n

    if lobo:
        rows = []
        for source in [only] if only else SOURCES:
            t0 = time.perf_counter()
            man = manifests[SNIPPET_SET if source == SNIPPET_SET else "gold"]
            model, n = fit_on([p for p in pages if p.source != source])
            today = _f1_of(source, honest_score(source, dirs[source], man, None, overrides, sm))
            left_out = _f1_of(source, honest_score(source, dirs[source], man, model, overrides, sm))
            rows.append((source, today, left_out, model.decision, time.perf_counter() - t0))
            print(f"  left out {source}: today {today:.3f}, refitted without it {left_out:.3f}, "
                  f"decision {model.decision}, {time.perf_counter() - t0:.0f} s", flush=True)
        print("\nleave-one-benchmark-out (each set scored by a model fitted without it; stage-only)")
        print(f"{'left out':<12} {'metric':<10} {'today':>7} {'LOBO':>7}")
        for source, today, left_out, _, _ in rows:
            metric = "snippet F1" if source == SNIPPET_SET else "line F1"
            print(f"{source:<12} {metric:<10} {today:>7.3f} {left_out:>7.3f}")
        gold = [r for r in rows if r[0] in GOLD_SETS]
        if len(gold) == len(GOLD_SETS):
            print(f"{'gold mean':<12} {'line F1':<10} {sum(r[1] for r in gold) / 4:>7.3f} {sum(r[2] for r in gold) / 4:>7.3f}")
    if write is not None:
        t0 = time.perf_counter()
        model, n = fit_on(pages)
        data = {
            "description": "Weights of the two logistic models of tasks/stages/linefeatures.py (feature name -> weight) "
            "and the decision constants of ContentClassifier. Written by bench/eval_boilerplate.py --fit.",
            "line_weights": dict(zip(lf.LINE_FEATURES, (round(w, 4) for w in model.line_weights))),
            "context_weights": dict(zip(lf.CONTEXT_FEATURES, (round(w, 4) for w in model.context_weights))),
            "decision": model.decision,
            "metadata": {
                "fitted_on": {s: sum(1 for p in pages if p.source == s and p.train) for s in SOURCES},
                "training_pages": f"all pages of {', '.join(GOLD_SETS)} (label: line matches the gold by score.py's rule); "
                f"the 'fit' half of the {SNIPPET_SET} snippet set (label: line holds a with/without snippet)",
                "labelled_lines": n,
                "source_weighting": "each source the same total weight, its labelled lines equally"
                if snippet_share is None else f"the snippet set {snippet_share} of the total, the gold sets the rest equally",
                "l2": l2,
                "decision_chosen_by": "coordinate ascent over DECISION_GRID, mean per-source F1 on the training sources"
                if tune_decision else "not tuned",
                "date": datetime.date.today().isoformat(),
                "command": "make fit (bench/eval_boilerplate.py --fit)",
            },
        }
        write.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {write} (final fit {time.perf_counter() - t0:.0f} s)")
    print(f"fit total {time.perf_counter() - started:.0f} s")


def main() -> None:
    from corpusclean.tasks.stages.linefeatures import MODEL_PATH

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=Path, default=DEFAULT_PAGES, help="snippet page set folder (manifest.json, NAME.raw.txt, NAME.snippets.json)")
    parser.add_argument("--set-dir", type=Path, default=DEFAULT_GOLD,
                        help="gold page set folder (manifest.json with each page's set, NAME.raw.txt, NAME.gold.txt)")
    parser.add_argument("--only", choices=SOURCES, help="only this set (default: the snippet set and the four gold sets)")
    parser.add_argument("--lang", help="only pages of this language")
    parser.add_argument("--limit", type=int, help="only the first N pages of each set (after --lang)")
    parser.add_argument("--half", choices=["fit", "check"], help="only one half of the snippet set's pages")
    parser.add_argument("--stage-only", action="store_true", help="repair + paragraphs + boilerplate in-process (fast, no dedup)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--keep", type=Path, help="write the predictions to this folder (kept after the run)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--speed", action="store_true", help="only measure the boilerplate stage's MB/s on generated pages")
    parser.add_argument("--speed-corpus", type=Path, default=HERE / "out" / "corpus-20mb",
                        help="--speed: generated corpus folder (JSON lines) or a folder of .txt pages")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fit", action="store_true", help=f"fit on the five sources and write the model file ({MODEL_PATH.name})")
    parser.add_argument("--lobo", action="store_true", help="leave-one-benchmark-out scores (fit without each set, score on it)")
    parser.add_argument("--l2", type=float, default=1.0, help="--fit/--lobo: L2 penalty")
    parser.add_argument("--snippet-share", type=float, help="--fit/--lobo: the snippet set's share of the training weight (default: as each gold set)")
    parser.add_argument("--no-decision", action="store_true", help="--fit/--lobo: keep the decision constants as they are")
    parser.add_argument("--model-out", type=Path, default=MODEL_PATH, help="--fit: where to write the model file")
    parser.add_argument("--html", action="store_true",
                        help="gold sets only: read each page's html/NAME.html.gz (trafilatura, the HTML path) instead of NAME.raw.txt")
    parser.add_argument("--html-alone", action="store_true",
                        help="with --html --stage-only: score trafilatura's extracted text as it is (no repair, rules or classifier)")
    parser.add_argument("--workers", type=int, default=2, help="--html --stage-only: processes extracting HTML")
    args = parser.parse_args()
    if args.html and args.only == SNIPPET_SET:
        raise SystemExit("--html: the snippet set has no HTML; use a gold set (or no --only)")

    if args.speed:
        speed(args.speed_corpus, args.overrides, args.repeat)
        return
    pages, gold_dir = args.pages.resolve(), args.set_dir.resolve()
    for folder in (pages, gold_dir):
        if not (folder / "manifest.json").is_file():
            raise SystemExit(f"no manifest.json in {folder}")
    if args.fit or args.lobo:
        fit(pages, gold_dir, args.overrides, args.l2, args.lobo, args.model_out if args.fit else None,
            tune_decision=not args.no_decision, snippet_share=args.snippet_share, only=args.only)
        return
    sources = [args.only] if args.only else list(SOURCES)
    selected: dict[Path, list[dict]] = {}
    for folder, names in ((pages, [] if args.html else [SNIPPET_SET]), (gold_dir, list(GOLD_SETS))):
        manifest = [m for m in load_manifest(folder) if m["set"] in names and m["set"] in sources]
        if args.lang:
            manifest = [m for m in manifest if m["lang"] == args.lang]
        if args.half and folder == pages:
            manifest = [m for m in manifest if half_of(m["name"]) == args.half]
        if args.limit:
            manifest = [m for name in names for m in [x for x in manifest if x["set"] == name][: args.limit]]
        if manifest:
            selected[folder] = manifest
    if not selected:
        raise SystemExit("no pages selected")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="eval-boilerplate-") as tmp:
        work = Path(tmp)
        for k, (folder, manifest) in enumerate(selected.items()):
            pred = (args.keep / ("snippets" if folder == pages else "gold")) if args.keep else work / f"pred{k}"
            if pred.exists():
                shutil.rmtree(pred)
            pred.mkdir(parents=True)
            if args.html and args.stage_only:
                wall, extracted, html_bytes = predict_html(folder, manifest, pred, args.overrides, args.workers,
                                                           alone=args.html_alone)
                mode = ("HTML, trafilatura alone" if args.html_alone else
                        "HTML, stage-only (read+trafilatura, repair, paragraphs, boilerplate; no dedup)")
                mode += (f"; {html_bytes / 1e6:.1f} MB of HTML, extraction {html_bytes / 1e6 / extracted:.2f} MB/s "
                         f"on {args.workers} processes")
            elif args.html:
                run = work / f"run{k}"
                run.mkdir()
                wall, html_bytes = predict_html_pipeline(folder, manifest, pred, run, args.overrides)
                mb = html_bytes / 1e6
                mode = f"HTML, real pipeline (corpusclean run); {mb:.1f} MB of HTML, {mb / wall:.2f} MB/s end to end (wall)"
                stages = LAST_RUN.get("stages", {})
                stage_cpu = sum(s.get("cpu_seconds", 0.0) for s in stages.values())
                read_cpu = stages.get("read", {}).get("cpu_seconds", 0.0)
                if stage_cpu:
                    mode += (f"; CPU: stages {stage_cpu:.0f} s ({mb / stage_cpu:.2f} MB/s per core), "
                             f"read+extract {read_cpu:.0f} s ({mb / max(read_cpu, 1e-9):.2f} MB/s per core), "
                             f"whole command {LAST_RUN.get('command_cpu', 0):.0f} s "
                             f"({mb / max(LAST_RUN.get('command_cpu', 0), 1e-9):.2f} MB/s per core)")
            elif args.stage_only:
                wall = predict_stage_only(folder, manifest, pred, args.overrides)
                mode = "stage-only (repair, paragraphs, boilerplate; no dedup)"
            else:
                run = work / f"run{k}"
                run.mkdir()
                wall = predict_pipeline(folder, manifest, pred, run, args.overrides)
                mode = "real pipeline (corpusclean run)"
            print(f"{folder.parent.name}: {len(manifest)} pages, {mode}, {wall:.1f} s")
            if folder == pages:
                res = report(folder, manifest, pred, work, halves=not args.half)
                print_table(res)
                results["snippets"] = res
            else:
                res = report_gold(folder, manifest, pred, work)
                print_gold_table(res)
                results["gold"] = res
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
