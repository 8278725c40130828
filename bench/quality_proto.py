"""Prototype: other content models over the line classifier's features, scored **left out** on a
``bench/whatif.py`` dump, exactly as score.py scores (issue 9: can a better model class or wider
context beat today's model file out of sample?).

``prep`` computes, for every page the classifier reads, today's line features, line scores and
context features (``linefeatures.document_lines`` / ``document_context`` on the dump's rule
reasons) and each unflagged line's label (gold pages: matches the gold by score.py's rule;
snippet pages: ``line_labels``). ``run`` fits a model per left-out source on the other four (the
snippet set: its "fit" half only), chooses the decision constants among ``--grid`` on the
training sources (exact score.py F1), scores the left-out source with the real decisions
(``ContentClassifier.classify(prepared=...)``), and prints the left-out table. ``--train SOURCES``
instead fits once on those sources and scores every set (``--train trafilatura``: the gold sets
are all unseen). ``--baseline`` re-scores today's model through the same path (equal to the dump).

Models (``--mode``, ``--model``): ``ext`` one logistic / MLP stage over the line features, the
context features and ``EXTRA`` (wider windows, block/core position, page statistics, table-cell
and link runs); ``ctx`` without the extras; ``ctxonly`` / ``ctxext`` today's context-model inputs
(with the extras); ``resid`` today's context logit as a fixed offset plus a fitted correction
over ``EXTRA`` (``--band``: trained only on lines today scores between the bands); ``--offset``
the same offset under any mode (``--model mlp --offset``: an MLP correcting today's model). Figures
(2026-11-30) are in the README, *Boilerplate*, "A better model class": none beat today's.

    PYTHONPATH=. .venv/bin/python bench/whatif.py dump /tmp/wtq/base.pkl
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py prep /tmp/wtq/base.pkl /tmp/wtq/feat.pkl
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run /tmp/wtq/base.pkl /tmp/wtq/feat.pkl --baseline
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run /tmp/wtq/base.pkl /tmp/wtq/feat.pkl --mode ext --model logit
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run ... --mode resid --l2 100 [--band 2.2]
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run ... --mode ext --model mlp --hidden 16 --sample 40000
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run ... --mode ctxonly --train trafilatura

A run takes 1.5-15 minutes on this machine (the MLP ~2-3 minutes of fitting per fold).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.eval_boilerplate import GOLD_SETS, SNIPPET_SET, SOURCES, half_of  # noqa: E402


def prep(dump_path: Path, out: Path) -> None:
    from bench import whatif
    from corpusclean.tasks.stages import linefeatures as lf

    pages = whatif.load(dump_path)
    feats = {}
    t = time.perf_counter()
    for page in pages:
        if not page.classified:
            continue
        doc = lf.document_lines(page.lines, page.rules)
        z, ctx = lf.document_context(doc)
        ctx = np.asarray(ctx, dtype=np.float64)
        labels = np.array([(-1 if page.label[i] is None else int(page.label[i])) for i in doc.index], dtype=np.int8)
        feats[(page.source, page.name)] = (doc, np.asarray(z), ctx, labels)
    with open(out, "wb") as f:
        pickle.dump(feats, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{len(feats)} classified pages in {time.perf_counter() - t:.0f} s")


# ---------------------------------------------------------------------------------------------
# extra features (per page, numpy)


def _window_mean(x: np.ndarray, k: int) -> np.ndarray:
    """mean of x over [j-k, j+k] (zero padded, divided by 2k+1), the line itself included."""
    c = np.concatenate(([0.0], np.cumsum(np.concatenate((np.zeros(k), x, np.zeros(k))))))
    return (c[2 * k + 1 :] - c[: -2 * k - 1]) / (2 * k + 1)


def _run_length(flag: np.ndarray) -> np.ndarray:
    n = len(flag)
    out = np.zeros(n)
    j = 0
    while j < n:
        if not flag[j]:
            j += 1
            continue
        k = j
        while k < n and flag[k]:
            k += 1
        out[j:k] = k - j
        j = k
    return out


EXTRA = (
    "p15", "p30",  # mean line-model probability over +-15 / +-30 lines
    "chars5",  # mean log_chars over +-5
    "stop5",  # mean stop_ratio over +-5
    "z_prev", "z_next",  # neighbours' line scores (log-odds, clipped)
    "rel_in_block",  # position inside the main block (0..1), -1 outside
    "log_dist_core",  # log(1 + lines to the core)
    "block_share",  # block lines / page lines
    "log_lines",  # log(1 + unflagged lines of the page)
    "page_p",  # mean p of the page
    "p_rank",  # rank of the line's p in its page (0..1)
    "digit_run",  # log(1 + run of lines with digit-heavy or short-cell shape)
    "link_run",  # log(1 + run of link-like lines)
    "len_sim",  # |log_chars - neighbours' mean log_chars|
    "after_core",  # below the core's end
    "before_core",  # above the core's start
    "core_mass_before",  # share of the core above the line (0 above, 1 below)
)


def extra_features(doc, z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    from corpusclean.tasks.stages import linefeatures as lf

    F, C = lf._F, lf._C
    v = np.asarray(doc.vectors)
    m = len(z)
    p = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    in_block = ctx[:, C["in_block"]] != 0
    in_core = ctx[:, C["in_core"]] != 0
    idx = np.arange(m)
    X = np.zeros((m, len(EXTRA)))
    X[:, 0] = _window_mean(p, 15)
    X[:, 1] = _window_mean(p, 30)
    lc = v[:, F["log_chars"]]
    X[:, 2] = _window_mean(lc, 5)
    X[:, 3] = _window_mean(v[:, F["stop_ratio"]], 5)
    zc = np.clip(z, -8, 8)
    X[:, 4] = np.concatenate(([0.0], zc[:-1]))
    X[:, 5] = np.concatenate((zc[1:], [0.0]))
    if in_block.any():
        bs, be = idx[in_block][0], idx[in_block][-1]
        X[:, 6] = np.where(in_block, (idx - bs) / max(1, be - bs), -1.0)
        X[:, 8] = (be - bs + 1) / m
    else:
        X[:, 6] = -1.0
    if in_core.any():
        cs, ce = idx[in_core][0], idx[in_core][-1]
        d = np.where(idx < cs, cs - idx, np.where(idx > ce, idx - ce, 0))
        X[:, 7] = np.log1p(d)
        X[:, 15] = idx > ce
        X[:, 16] = idx < cs
        ev = np.maximum(z, 0) * (1 + v[:, F["log_words"]])
        cm = np.where(in_core, ev, 0.0)
        tot = cm.sum() + 1e-9
        X[:, 17] = np.cumsum(cm) / tot
    else:
        X[:, 7] = np.log1p(m)
    X[:, 9] = np.log1p(m)
    X[:, 10] = p.mean()
    X[:, 11] = np.argsort(np.argsort(p, kind="stable"), kind="stable") / max(1, m - 1)
    cell = (v[:, F["digit_tokens"]] >= 0.5) | ((v[:, F["log_words"]] <= np.log1p(3)) & (v[:, F["terminal"]] == 0))
    X[:, 12] = np.log1p(_run_length(cell))
    link = (v[:, F["url"]] != 0) | (v[:, F["separators"]] >= 1)
    X[:, 13] = np.log1p(_run_length(link))
    nb = (np.concatenate(([lc[0]], lc[:-1])) + np.concatenate((lc[1:], [lc[-1]]))) / 2
    X[:, 14] = np.abs(lc - nb)
    return X


# ---------------------------------------------------------------------------------------------
# models


class Standard:
    def __init__(self, X):
        self.mu = X.mean(0)
        self.sd = X.std(0) + 1e-6
        self.mu[0] = 0.0  # bias column stays 1
        self.sd[0] = 1.0

    def __call__(self, X):
        return (X - self.mu) / self.sd


def fit_logistic(X, y, w, l2=1.0, offset=None):
    from scipy.optimize import minimize

    off = 0.0 if offset is None else offset

    def loss(b):
        z = X @ b + off
        pen = np.r_[0.0, b[1:]]
        val = np.sum(w * (np.logaddexp(0.0, z) - y * z)) + l2 * np.sum(pen**2)
        g = X.T @ (w * (1.0 / (1.0 + np.exp(-z)) - y)) + 2 * l2 * pen
        return val, g

    return minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x


def fit_mlp(X, y, w, hidden=16, l2=1.0, seed=0, maxiter=400, offset=None):
    """One hidden layer (tanh), logistic output (plus ``offset``: a fixed logit); weighted log loss
    + L2 (not on biases)."""
    from scipy.optimize import minimize

    n, d = X.shape
    rng = np.random.default_rng(seed)
    shapes = [(d, hidden), (hidden,), (hidden,), (1,)]
    sizes = [int(np.prod(s)) for s in shapes]

    def unpack(theta):
        out, k = [], 0
        for s, sz in zip(shapes, sizes):
            out.append(theta[k : k + sz].reshape(s))
            k += sz
        return out

    theta0 = np.concatenate([
        (rng.standard_normal((d, hidden)) / np.sqrt(d)).ravel(), np.zeros(hidden),
        (rng.standard_normal(hidden) / np.sqrt(hidden)), np.zeros(1),
    ])
    wsum = w.sum()
    off = 0.0 if offset is None else offset

    def loss(theta):
        W1, b1, W2, b2 = unpack(theta)
        H = np.tanh(X @ W1 + b1)
        z = H @ W2 + b2[0] + off
        val = np.sum(w * (np.logaddexp(0.0, z) - y * z)) / wsum * n
        val += l2 * (np.sum(W1**2) + np.sum(W2**2))
        r = w * (1.0 / (1.0 + np.exp(-z)) - y) / wsum * n
        gW2 = H.T @ r + 2 * l2 * W2
        gb2 = np.array([r.sum()])
        dH = np.outer(r, W2) * (1 - H**2)
        gW1 = X.T @ dH + 2 * l2 * W1
        gb1 = dH.sum(0)
        return val, np.concatenate([gW1.ravel(), gb1, gW2, gb2])

    res = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return unpack(res.x)


def mlp_logit(params, X):
    W1, b1, W2, b2 = params
    return np.tanh(X @ W1 + b1) @ W2 + b2[0]


# ---------------------------------------------------------------------------------------------


def source_weights(src):
    names, counts = np.unique(src, return_counts=True)
    per = {n: len(src) / len(names) / c for n, c in zip(names, counts)}
    return np.array([per[s] for s in src])


def design(doc, z, ctx, mode):
    if mode == "resid":
        return np.hstack([np.ones((len(z), 1)), extra_features(doc, z, ctx)])
    if mode in ("ctxonly", "ctxext"):  # today's context model's inputs (bias first), and the extras
        return ctx if mode == "ctxonly" else np.hstack([ctx, extra_features(doc, z, ctx)])
    parts = [np.asarray(doc.vectors)]  # includes the bias column
    if mode in ("ctx", "ext"):
        parts.append(ctx[:, 1:])
    if mode == "ext":
        parts.append(extra_features(doc, z, ctx))
    return np.hstack(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["prep", "run"])
    ap.add_argument("dump", type=Path)
    ap.add_argument("feat", type=Path)
    ap.add_argument("--mode", default="ext", choices=["ctx", "ext", "resid", "ctxonly", "ctxext"])
    ap.add_argument("--offset", action="store_true", help="today's context logit as a fixed offset (any mode)")
    ap.add_argument("--model", default="logit", choices=["logit", "mlp"])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--sample", type=int, default=0, help="subsample training lines per source (0: all)")
    ap.add_argument("--folds", default=",".join(SOURCES))
    ap.add_argument("--grid", default="0.5:0.25:0.1", help="threshold:block:margin candidates, ';' separated")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--band", type=float, default=0.0, help="resid: train only on lines with |today's logit| < band (0: all)")
    ap.add_argument("--train", help="fixed training sources (comma separated): one fit, every set scored")
    a = ap.parse_args()
    if a.cmd == "prep":
        prep(a.dump, a.feat)
        return
    from bench import whatif
    from corpusclean.tasks.stages import linefeatures as lf

    pages = whatif.load(a.dump)
    with open(a.feat, "rb") as f:
        feats = pickle.load(f)
    scorer = whatif.Scorer(pages)
    base = scorer.table(lambda p: p.reasons, label="dump (today)")
    keys = [k for k in feats]
    t = time.perf_counter()
    D = {k: design(feats[k][0], feats[k][1], feats[k][2], a.mode) for k in keys}
    W0 = np.asarray(lf.CONTEXT_WEIGHTS)
    OFF = {k: (feats[k][2] @ W0 if a.mode == "resid" or a.offset else np.zeros(len(feats[k][1]))) for k in keys}
    print(f"design {time.perf_counter() - t:.0f} s, {next(iter(D.values())).shape[1]} columns", flush=True)
    by_name = {(p.source, p.name): p for p in pages}

    def train_rows(train_sources, snippet_half=True):
        X, y, src = [], [], []
        rng = np.random.default_rng(0)
        for s in train_sources:
            Xs, ys = [], []
            for k in keys:
                if k[0] != s or (s == SNIPPET_SET and snippet_half and half_of(k[1]) != "fit"):
                    continue
                lab = feats[k][3]
                ok = lab >= 0
                if a.band:
                    ok &= np.abs(OFF[k]) < a.band
                Xs.append(np.hstack([D[k][ok], OFF[k][ok, None]]))
                ys.append(lab[ok])
            Xs, ys = np.vstack(Xs), np.concatenate(ys)
            if a.sample and len(ys) > a.sample:
                sel = rng.choice(len(ys), a.sample, replace=False)
                Xs, ys = Xs[sel], ys[sel]
            X.append(Xs)
            y.append(ys)
            src += [s] * len(ys)
        return np.vstack(X), np.concatenate(y).astype(float), source_weights(np.array(src))

    def reasons_with(prob_of, decision):
        content = lf.ContentClassifier(**decision)
        out = {}
        for k in keys:
            doc, z, ctx, _ = feats[k]
            probs = prob_of(k)
            page = by_name[k]
            out[k] = content.classify(page.lines, page.rules, prepared=(doc, z.tolist(), ctx, probs.tolist()))
        return out

    if a.baseline:
        W = np.asarray(lf.CONTEXT_WEIGHTS)
        res = reasons_with(lambda k: 1 / (1 + np.exp(-(feats[k][2] @ W))), {})
        scorer.table(lambda p: res.get((p.source, p.name), p.reasons), base, label="recomputed today")
        return

    grid = []
    for g in a.grid.split(";"):
        th, bl, mg = map(float, g.split(":"))
        grid.append({"threshold": th, "block_threshold": bl, "outside_margin": mg})
    final = {}
    folds = ["ALL"] if a.train else a.folds.split(",")
    for held in folds:
        t = time.perf_counter()
        train = a.train.split(",") if a.train else [s for s in SOURCES if s != held]
        X, y, w = train_rows(train)
        X, off = X[:, :-1], X[:, -1]
        st = Standard(X)
        if a.model == "logit":
            beta = fit_logistic(st(X), y, w, a.l2, off)
            if a.mode == "resid":
                print("  beta", dict(zip(("bias",) + EXTRA, np.round(beta / st.sd, 3))), flush=True)
            prob = lambda k: 1 / (1 + np.exp(-(st(D[k]) @ beta + OFF[k])))  # noqa: E731
        else:
            params = fit_mlp(st(X), y, w, a.hidden, a.l2, offset=off)
            prob = lambda k: 1 / (1 + np.exp(-(mlp_logit(params, st(D[k])) + OFF[k])))  # noqa: E731
        cache = {k: prob(k) for k in keys}
        fit_s = time.perf_counter() - t
        best = None
        for dec in grid:
            res = reasons_with(cache.__getitem__, dec)
            f = scorer.f1(lambda p: res.get((p.source, p.name), p.reasons))
            train_mean = np.mean([f[s] for s in train])
            if best is None or train_mean > best[0]:
                best = (train_mean, dec, res, f)
            print(f"  held {held:<12} {dec} train mean {train_mean:.4f} " + " ".join(f"{k[:5]} {v:.4f}" for k, v in f.items()), flush=True)
        _, dec, res, f = best
        if held == "ALL":
            scorer.table(lambda p: res.get((p.source, p.name), p.reasons), base, label=f"train {a.train} {dec}")
            continue
        final[held] = f[held]
        if held == SNIPPET_SET:
            final["snippet:fr"] = f["snippet:fr"]
        print(f"held out {held}: {f[held]:.4f} (today {base[held]:.4f}) with {dec}; fit {fit_s:.0f} s", flush=True)
    if final:
        gold = [final[s] for s in GOLD_SETS if s in final]
        print("LEFT OUT:", {k: round(v, 4) for k, v in final.items()}, "mean4", round(float(np.mean(gold)), 4) if gold else "-")


if __name__ == "__main__":
    main()
