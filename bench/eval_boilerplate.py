"""Boilerplate quality: snippet precision / recall / F1 on a page set, through the real pipeline.

The page set (default ``../shared/eval/boilerplate/pages``, read-only) holds ``NAME.raw.txt``
(all visible text of a real web page, one block per line), ``NAME.snippets.json`` (snippets of
main content and of boilerplate) and ``manifest.json`` (each page's language). This command

1. copies each ``NAME.raw.txt`` to a temporary raw folder as ``NAME.txt``;
2. runs the real ``corpusclean run --raw TMP --out TMP2 --quiet`` (Prefect, every stage, dedup
   included) — or, with ``--stage-only``, just repair + paragraphs + boilerplate in-process
   (no Prefect, no language, no dedup: seconds instead of a minute, for iterating);
3. writes each document's clean ``text`` to ``PRED/NAME.txt``;
4. scores with the set's own ``score.py`` (``--json``), overall, per language (de, en, es, fr,
   the others together) and, for fitting without over-fitting, per half of the pages (a fixed
   split by a hash of the page name: ``fit`` and ``check``).

    .venv/bin/python bench/eval_boilerplate.py                  # the reported figures
    .venv/bin/python bench/eval_boilerplate.py --stage-only     # fast iteration
    .venv/bin/python bench/eval_boilerplate.py --lang fr --limit 10 --keep /tmp/pred
    .venv/bin/python bench/eval_boilerplate.py --speed          # boilerplate stage MB/s only
    .venv/bin/python bench/eval_boilerplate.py --fit            # refit the line classifier's weights

``--fit`` fits the two logistic models of ``tasks/linefeatures.py`` on the "fit" half of the
pages only (so that the "check" half stays an honest held-out estimate) and prints
``LINE_WEIGHTS`` and ``CONTEXT_WEIGHTS`` to paste into the module. Training lines are the
lines no rule flags that contain a snippet: "with" snippets label article text (1), "without"
snippets chrome (0).

Scoring subsets (a language, a half, ``--limit``) uses a temporary set folder holding the
subset's ``manifest.json`` and symbolic links to the pages: nothing is copied out of the set,
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

from tasks import corpus_state  # noqa: E402

DEFAULT_PAGES = REPO.parent / "shared" / "eval" / "boilerplate" / "pages"
MAIN_LANGS = ("de", "en", "es", "fr")


def half_of(name: str) -> str:
    """A fixed, name-based split of the pages into two halves ("fit" and "check")."""
    return "fit" if hashlib.sha1(name.encode("utf-8")).digest()[0] % 2 == 0 else "check"


def load_manifest(pages: Path) -> list[dict]:
    return json.loads((pages / "manifest.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Predictions


def predict_pipeline(pages: Path, manifest: list[dict], pred: Path, work: Path, overrides: list[str]) -> float:
    """The real command on every page; clean text per page into ``pred``. Returns the wall time."""
    raw, out = work / "raw", work / "clean"
    raw.mkdir()
    for m in manifest:
        shutil.copyfile(pages / f"{m['name']}.raw.txt", raw / f"{m['name']}.txt")
    cmd = [str(REPO / ".venv" / "bin" / "corpusclean"), "run", "--raw", str(raw), "--out", str(out), "--quiet"]
    for override in overrides:
        cmd += ["--set", override]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"corpusclean failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    table = corpus_state.read_table(out, "documents", columns=["source_path", "text"])
    for path, text in zip(table.column("source_path").to_pylist(), table.column("text").to_pylist()):
        (pred / path).write_text(text or "", encoding="utf-8")
    return wall


def stage_only_texts(texts: list[str], overrides: list[str]) -> list[str]:
    """Repair, paragraphs and boilerplate in-process; the kept paragraphs of each text (no dedup)."""
    from tasks.boilerplate import BoilerplateStage
    from tasks.config import load_config
    from tasks.paragraphs import ParagraphStage
    from tasks.records import Batch, Document
    from tasks.repair import RepairStage
    from tasks.stage import run_stages

    config = load_config(None, overrides)
    stages = [RepairStage(use_ftfy=config.repair.ftfy), ParagraphStage(), BoilerplateStage(config.boilerplate)]
    docs = [Document(f"d{i}", f"{i}.txt", "0" * 64, 0, t, "utf-8") for i, t in enumerate(texts)]
    batch = run_stages(Batch(docs), stages)
    p = batch.paragraphs
    kept: list[list[str]] = [[] for _ in docs]  # by input position (repair may reject empty documents)
    index = [int(d.doc_id[1:]) for d in batch.docs]
    for pos, text, chrome in zip(p.doc_pos, p.text, p.is_boilerplate):
        if not chrome:
            kept[index[pos]].append(text)
    return ["\n\n".join(k) for k in kept]


def predict_stage_only(pages: Path, manifest: list[dict], pred: Path, overrides: list[str]) -> float:
    from tasks.read import decode_bytes

    started = time.perf_counter()
    texts = [decode_bytes((pages / f"{m['name']}.raw.txt").read_bytes())[0] for m in manifest]
    for m, text in zip(manifest, stage_only_texts(texts, overrides)):
        (pred / f"{m['name']}.txt").write_text(text, encoding="utf-8")
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Scoring


def score_subset(pages: Path, subset: list[dict], pred: Path, work: Path, label: str) -> dict | None:
    """``score.py --json`` on a subset of the pages (temporary manifest + symlinks to the pages)."""
    if not subset:
        return None
    set_dir = work / f"set-{label}"
    set_dir.mkdir()
    for m in subset:
        for suffix in (".raw.txt", ".snippets.json"):
            os.symlink(pages / f"{m['name']}{suffix}", set_dir / f"{m['name']}{suffix}")
    (set_dir / "manifest.json").write_text(json.dumps(subset), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(pages.parent / "score.py"), str(pred), "--set-dir", str(set_dir), "--json"],
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
    from tasks.boilerplate import BoilerplateStage
    from tasks.config import load_config
    from tasks.paragraphs import ParagraphStage
    from tasks.records import Batch, Document

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
# Fitting the line classifier


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


def _fit_logistic(X, y, l2: float = 1.0):
    import numpy as np
    from scipy.optimize import minimize

    def loss(w):
        z = X @ w
        penalty = np.r_[0.0, w[1:]]  # the bias is not penalised
        value = np.sum(np.logaddexp(0.0, z) - y * z) + l2 * np.sum(penalty**2)
        grad = X.T @ (1.0 / (1.0 + np.exp(-z)) - y) + 2.0 * l2 * penalty
        return value, grad

    return minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B").x


def fit(pages: Path, manifest: list[dict], overrides: list[str]) -> None:
    import numpy as np

    from tasks import linefeatures as lf
    from tasks.boilerplate import BoilerplateClassifier, load_rule_packs
    from tasks.config import load_config
    from tasks.paragraphs import split_paragraphs
    from tasks.read import decode_bytes
    from tasks.repair import repair_text

    config = load_config(None, overrides).boilerplate
    rules = BoilerplateClassifier(load_rule_packs(config.rule_packs, config.extra_rule_files))
    docs = []
    for m in manifest:
        if half_of(m["name"]) != "fit":
            continue
        text, _ = repair_text(decode_bytes((pages / f"{m['name']}.raw.txt").read_bytes())[0])
        lines = [text[a:b] for a, b in split_paragraphs(text)]
        if not lines:
            continue
        snippets = json.loads((pages / f"{m['name']}.snippets.json").read_text(encoding="utf-8"))
        reasons = rules.classify_rules(lines)
        doc = lf.document_lines(lines, reasons)
        labels = line_labels(lines, snippets)
        docs.append((doc, [labels[i] for i in doc.index]))
    X = np.array([v for doc, labels in docs for v, y in zip(doc.vectors, labels) if y is not None])
    y = np.array([y for doc, labels in docs for y in labels if y is not None], float)
    line_weights = _fit_logistic(X, y)
    C = []
    for doc, labels in docs:
        _, vectors = lf.document_context(doc, line_weights)
        C.extend(v for v, y in zip(vectors, labels) if y is not None)
    context_weights = _fit_logistic(np.array(C), y)
    print(f"fitted on {len(docs)} pages of the 'fit' half, {len(y)} labelled lines ({int(y.sum())} article text)")
    for name, weights, names in (("LINE_WEIGHTS", line_weights, lf.LINE_FEATURES),
                                 ("CONTEXT_WEIGHTS", context_weights, lf.CONTEXT_FEATURES)):
        print(f"{name} = (")
        for k in range(0, len(weights), 8):
            print("    " + " ".join(f"{w:.3f}," for w in weights[k:k + 8]))
        print(")")
        print("#  " + ", ".join(f"{n}={w:+.2f}" for n, w in zip(names, weights)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=Path, default=DEFAULT_PAGES, help="page set folder (manifest.json, NAME.raw.txt, NAME.snippets.json)")
    parser.add_argument("--lang", help="only pages of this language")
    parser.add_argument("--limit", type=int, help="only the first N pages (after --lang)")
    parser.add_argument("--half", choices=["fit", "check"], help="only one half of the pages")
    parser.add_argument("--stage-only", action="store_true", help="repair + paragraphs + boilerplate in-process (fast, no dedup)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--keep", type=Path, help="write the predictions to this folder (kept after the run)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--speed", action="store_true", help="only measure the boilerplate stage's MB/s on generated pages")
    parser.add_argument("--speed-corpus", type=Path, default=HERE / "out" / "corpus-20mb",
                        help="--speed: generated corpus folder (JSON lines) or a folder of .txt pages")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fit", action="store_true", help="fit the line classifier on the 'fit' half and print its weights")
    args = parser.parse_args()

    if args.speed:
        speed(args.speed_corpus, args.overrides, args.repeat)
        return
    pages = args.pages.resolve()
    if not (pages / "manifest.json").is_file():
        raise SystemExit(f"no manifest.json in {pages}")
    manifest = load_manifest(pages)
    if args.fit:
        fit(pages, manifest, args.overrides)
        return
    if args.lang:
        manifest = [m for m in manifest if m["lang"] == args.lang]
    if args.half:
        manifest = [m for m in manifest if half_of(m["name"]) == args.half]
    if args.limit:
        manifest = manifest[: args.limit]
    if not manifest:
        raise SystemExit("no pages selected")
    with tempfile.TemporaryDirectory(prefix="eval-boilerplate-") as tmp:
        work = Path(tmp)
        pred = args.keep or work / "pred"
        if pred.exists():
            shutil.rmtree(pred)
        pred.mkdir(parents=True)
        if args.stage_only:
            wall = predict_stage_only(pages, manifest, pred, args.overrides)
            mode = "stage-only (repair, paragraphs, boilerplate; no dedup)"
        else:
            wall = predict_pipeline(pages, manifest, pred, work, args.overrides)
            mode = "real pipeline (corpusclean run)"
        results = report(pages, manifest, pred, work, halves=not args.half)
    print(f"{len(manifest)} pages, {mode}, {wall:.1f} s")
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
