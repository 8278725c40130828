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
(2026-11-30) are in docs/boilerplate-quality.md, "A better model class": none beat today's.

    PYTHONPATH=. .venv/bin/python bench/whatif.py dump /tmp/wtq/base.pkl
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py prep /tmp/wtq/base.pkl /tmp/wtq/feat.pkl
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run /tmp/wtq/base.pkl /tmp/wtq/feat.pkl --baseline
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run /tmp/wtq/base.pkl /tmp/wtq/feat.pkl --mode ext --model logit
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run ... --mode resid --l2 100 [--band 2.2]
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run ... --mode ext --model mlp --hidden 16 --sample 40000
    PYTHONPATH=. .venv/bin/python bench/quality_proto.py run ... --mode ctxonly --train trafilatura

A run takes 1.5-15 minutes on this machine (the MLP ~2-3 minutes of fitting per fold).

``decode`` (issue 9, a structured decoder instead of hand-made block decisions): no refit; each
page's unflagged lines are decoded from today's context-model probabilities, then the rest of
today's decisions run (headline, gaps, comment threads, reasons; sandwich and headings unless
turned off). ``--decode-grid`` is JSON, name -> candidate values, every combination is scored,
and each source is scored left out with the combination best on the other four (mean F1):

- ``lam``: a two-state Viterbi segmentation (``viterbi_keep``) maximising, over the lines called
  content, the sum of ``logit(p) - logit(bar)`` (bar: ``t_core`` in the block's core, ``t_out``
  outside; today 0.25 / 0.6) minus ``lam`` per switch; ``lam_rule`` the switch cost just after a
  rule-flagged chrome line, ``clip`` bounds each line's evidence, ``w_short`` weighs short lines',
  ``edge`` the cost of content at a page's ends. ``lam`` 0 is today's threshold exactly;
- ``combine`` ``and`` / ``or`` with ``where`` ``core`` / ``out``: the decoder only removes (and)
  or only adds (or) lines against today's threshold, only in (outside) the core; ``drop_only``
  ``nonterminal`` / ``short``: (and) removes only lines without a sentence end / short ones
  (``max_words``: and of at most that many words);
- ``fb`` with ``stay1``/``stay0``/``alpha``: the posterior of a two-state HMM (forward-backward,
  ``posterior_content``; emissions ``alpha * logit(p)``, staying in content / chrome with those
  probabilities) held to the bars instead of ``p``;
- ``sandwich`` / ``headings`` / ``gaps`` false: the decoder in place of those hand-made steps;
- ``emit`` ``z``: the decoder reads the line model's scores instead of the context model's.

``--exact``: score.py's figures (~4 s a combination); without it a per-line label proxy (~2 s).

    PYTHONPATH=. .venv/bin/python bench/quality_proto.py decode /tmp/wtq/base.pkl /tmp/wtq/feat.pkl --exact \
        --decode-grid '{"lam": [0.5, 1, 2, 4], "clip": [0, 2], "w_short": [1, 0.5]}'

Figures (2026-11-30) in docs/boilerplate-quality.md, "A structured decoder": none beats today.
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

from bench.eval_boilerplate import GOLD_SETS, SNIPPET_SET, SOURCES, f1_by_source, half_of  # noqa: E402


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
    ap.add_argument("cmd", choices=["prep", "run", "decode"])
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
    ap.add_argument("--decode-grid", default='{"lam": [0.0, 1.0]}', help="decode: JSON name -> candidate values")
    ap.add_argument("--exact", action="store_true", help="decode: score.py's figures (else the per-line label proxy)")
    ap.add_argument("--save", type=Path)
    a = ap.parse_args()
    if a.cmd == "decode":
        decode_main(a)
        return
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


# ---------------------------------------------------------------------------------------------
# structured decoder (issue 9): a two-state segmentation of each page's unflagged lines over
# today's calibrated probabilities, a handful of constants chosen on the training sets only


def viterbi_keep(e, switch, edge):
    """Two states per row (1 content, emission ``e[j]``; 0 chrome, emission 0); moving between
    rows j-1 and j in another state costs ``switch[j]``; starting or ending in content costs
    ``edge``. Returns the best state sequence (bool), ties to chrome."""
    m = len(e)
    out = np.zeros(m, dtype=np.bool_)
    if m == 0:
        return out
    s0, s1 = 0.0, e[0] - edge
    b0 = np.zeros(m, dtype=np.int8)
    b1 = np.zeros(m, dtype=np.int8)
    for j in range(1, m):
        c = switch[j]
        if s0 >= s1 - c:
            n0, b0[j] = s0, 0
        else:
            n0, b0[j] = s1 - c, 1
        if s1 > s0 - c:
            n1, b1[j] = s1, 1
        else:
            n1, b1[j] = s0 - c, 0
        s0, s1 = n0, n1 + e[j]
    state = 1 if s1 - edge > s0 else 0
    for j in range(m - 1, -1, -1):
        out[j] = state == 1
        state = b1[j] if state == 1 else b0[j]
    return out


try:
    from numba import njit as _njit

    viterbi_keep = _njit(cache=False)(viterbi_keep)
except Exception:  # pragma: no cover
    pass


def posterior_content(e, stay1, stay0):
    """Forward-backward of a two-state HMM (content / chrome) whose per-row evidence for content
    is the log-likelihood ratio ``e[j]``, staying in content / chrome with probability
    ``stay1`` / ``stay0``, uniform start: each row's posterior probability of content."""
    m = len(e)
    q = np.zeros(m)
    if m == 0:
        return q
    l11, l10 = np.log(stay1), np.log(1 - stay1)
    l00, l01 = np.log(stay0), np.log(1 - stay0)
    f1 = np.zeros(m)
    f0 = np.zeros(m)
    f1[0], f0[0] = e[0], 0.0
    for j in range(1, m):
        a1 = f1[j - 1] + l11
        b1 = f0[j - 1] + l01
        a0 = f0[j - 1] + l00
        b0 = f1[j - 1] + l10
        f1[j] = max(a1, b1) + np.log1p(np.exp(-abs(a1 - b1))) + e[j]
        f0[j] = max(a0, b0) + np.log1p(np.exp(-abs(a0 - b0)))
    g1, g0 = 0.0, 0.0
    for j in range(m - 1, -1, -1):
        x = f1[j] + g1 - (f0[j] + g0)
        q[j] = 1.0 / (1.0 + np.exp(-x)) if x > -700 else 0.0
        if j:
            # backward: g(j-1) over the next state's (row j) emission
            a = l11 + e[j] + g1
            b = l10 + g0
            c = l01 + e[j] + g1
            d = l00 + g0
            g1 = max(a, b) + np.log1p(np.exp(-abs(a - b)))
            g0 = max(c, d) + np.log1p(np.exp(-abs(c - d)))
    return q


try:
    posterior_content = _njit(cache=False)(posterior_content)
except Exception:  # pragma: no cover
    pass


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def decode_keep(dec, doc, probs, in_core):
    """The decoder's keep mask of one page's unflagged rows (``dec``: its constants)."""
    probs = np.asarray(probs, dtype=np.float64)
    in_core = np.asarray(in_core, dtype=bool)
    bar = np.where(in_core, dec["t_core"], dec["t_out"])
    if dec.get("fb"):
        e = dec.get("alpha", 1.0) * (_logit(probs) - dec.get("shift", 0.0))
        q = posterior_content(e, dec["stay1"], dec["stay0"])
        return q > bar
    e = _logit(probs) - _logit(bar)
    c = dec.get("clip", 0.0)
    if c:
        e = np.clip(e, -c, c)
    short = np.asarray(doc.short, dtype=bool)
    e = np.where(short, e * dec.get("w_short", 1.0), e)
    lam = dec["lam"]
    rule_prev = np.asarray(doc.rule_prev, dtype=bool)
    switch = np.where(rule_prev, dec.get("lam_rule", lam), lam).astype(np.float64)
    # leaving / entering the core costs lam_core instead
    if "lam_core" in dec:
        edge_core = np.r_[False, in_core[1:] != in_core[:-1]]
        switch = np.where(edge_core, np.minimum(switch, dec["lam_core"]), switch)
    states = viterbi_keep(e, switch, dec.get("edge", 0.0))
    combine = dec.get("combine", "dec")
    if combine == "dec":  # the decoder decides every line (``where`` is not read)
        return states
    plain = probs > bar
    where = dec.get("where", "all")  # the decoder decides only here
    region = np.ones(len(probs), dtype=bool) if where == "all" else (in_core if where == "core" else ~in_core)
    if combine == "or":
        out = plain | states
    elif combine == "and":
        out = plain & states
        only = dec.get("drop_only")  # the decoder removes only lines of this form
        if only:
            from corpusclean.tasks.stages import linefeatures as lf

            v = np.asarray(doc.vectors, dtype=np.float64).reshape(-1, len(lf.LINE_FEATURES))
            form = v[:, lf._F["terminal"]] == 0 if only == "nonterminal" else short
            if dec.get("max_words"):  # ... and of at most this many words
                form &= v[:, lf._F["log_words"]] <= np.log1p(dec["max_words"])
            out = np.where(form, out, plain)
    else:
        out = states
    return np.where(region, out, plain)


def make_decoded_classifier(lf):
    class Decoded(lf.ContentClassifier):
        """``ContentClassifier`` whose threshold (and optionally sandwich / headings / gaps) is the decoder."""

        def __init__(self, dec, **kw):
            super().__init__(**kw)
            self.dec = dec

        def score(self, lines, reasons, vectors=None, lang=None, prepared=None):
            from bisect import bisect_left

            dec = self.dec
            n = len(lines)
            line_z = [None] * n
            content_p = [None] * n
            kept = [False] * n
            doc, z, vectors, probs = prepared
            columns = np.asarray(vectors).reshape(-1, len(lf.CONTEXT_FEATURES))
            in_main_block = (columns[:, lf._IN_BLOCK] != 0).tolist()
            in_block = (columns[:, lf._IN_CORE] != 0).tolist()
            # ``emit`` "z": the line model's own scores (no context model) are the emissions
            emit = probs if dec.get("emit", "p") == "p" else 1 / (1 + np.exp(-np.clip(np.asarray(z), -30, 30)))
            keep = decode_keep(dec, doc, emit, in_block).tolist()
            if dec.get("sandwich", True):
                lf.keep_sandwiched(keep, probs, self.sandwich_high, self.sandwich_low)
            if dec.get("headings", True):
                lf.keep_section_headings(keep, doc.short, in_block)
            start = next((j for j, b in enumerate(in_block) if b), 0)
            first = next((j for j, b in enumerate(in_main_block) if b), 0)
            if dec.get("headline", True):
                if first > 0 and not keep[first - 1] and probs[first - 1] > self.threshold:
                    keep[first - 1] = True
                for j in (start - 1, start) if start > 0 else (start,):
                    if not keep[j] and lf._headline(lines[doc.index[j]], doc.vectors[j]):
                        keep[j] = True
                        break
            if dec.get("gaps", True) and self.gap_lines > 0:
                found = self.markers.markers(lines)
                limit = bisect_left(doc.index, found[0]) if found else len(keep)
                lf.fill_article_gaps(keep, in_block, probs, limit, self.gap_lines, self.gap_floor)
            matrix = np.asarray(doc.vectors, dtype=np.float64).reshape(-1, len(lf.LINE_FEATURES))
            links = ((matrix[:, lf._F["url"]] != 0) | (matrix[:, lf._F["separators"]] >= 2)).tolist()
            link_like = [None] * n
            for j, i in enumerate(doc.index):
                line_z[i] = z[j]
                content_p[i] = probs[j]
                kept[i] = keep[j]
                link_like[i] = links[j]
            return lf.LineScores(doc.lang, line_z, content_p, kept, link_like)

    return Decoded


def proxy_f1(pages, reasons_by_key):
    """Line-label F1 per source (fast proxy of score.py: the dump's per-line labels)."""
    from collections import Counter

    c = {}
    for page in pages:
        r = reasons_by_key.get((page.source, page.name), page.reasons)
        cc = c.setdefault(page.source, Counter())
        for lab, rr in zip(page.label, r):
            if lab is None:
                continue
            k = rr is None
            cc["tp" if lab and k else "fp" if k else "fn" if lab else "tn"] += 1
    return f1_by_source(c)


def decode_main(a) -> None:
    import itertools
    import json as _json

    from bench import whatif
    from corpusclean.tasks.stages import linefeatures as lf

    pages = whatif.load(a.dump)
    with open(a.feat, "rb") as f:
        feats = pickle.load(f)
    keys = list(feats)
    by_name = {(p.source, p.name): p for p in pages}
    W = np.asarray(lf.CONTEXT_WEIGHTS)
    probs = {k: 1 / (1 + np.exp(-(feats[k][2] @ W))) for k in keys}
    Decoded = make_decoded_classifier(lf)
    D = lf.DECISION
    t_core0, t_out0 = D["block_threshold"], D["threshold"] + D["outside_margin"]

    def run(dec):
        content = Decoded(dec)
        out = {}
        for k in keys:
            doc, z, ctx, _ = feats[k]
            page = by_name[k]
            out[k] = content.classify(page.lines, page.rules, prepared=(doc, z.tolist(), ctx, probs[k].tolist()))
        return out

    grid_spec = _json.loads(a.decode_grid)
    base = {"t_core": t_core0, "t_out": t_out0, "lam": 0.0}
    names = list(grid_spec)
    combos = [dict(base, **dict(zip(names, vals))) for vals in itertools.product(*grid_spec.values())]
    scorer = whatif.Scorer(pages) if a.exact else None
    today = scorer.table(lambda p: p.reasons, label="dump (today)") if scorer else proxy_f1(pages, {})
    print("today proxy", {s: round(v, 4) for s, v in proxy_f1(pages, {}).items()}, flush=True)
    results = []
    for dec in combos:
        t = time.perf_counter()
        res = run(dec)
        if scorer:
            f = scorer.f1(lambda p: res.get((p.source, p.name), p.reasons))
        else:
            f = proxy_f1(pages, res)
        results.append((dec, f))
        print(_json.dumps({kk: vv for kk, vv in dec.items()}), " ".join(f"{s[:5]} {f[s]:.4f}{f[s]-today[s]:+.4f}" for s in SOURCES),
              f"mean4 {np.mean([f[s] for s in GOLD_SETS]):.4f}", f"{time.perf_counter() - t:.0f}s", flush=True)
    # left out: for each source, the combo with the best mean over the other four
    print("LEFT OUT (choice on the other four sources):")
    lo = {}
    for held in SOURCES:
        train = [s for s in SOURCES if s != held]
        dec, f = max(results, key=lambda r: np.mean([r[1][s] for s in train]))
        lo[held] = f[held]
        fr = f" (fr {f['snippet:fr']:.4f}, today {today['snippet:fr']:.4f})" if held == SNIPPET_SET and "snippet:fr" in f else ""
        print(f"  {held:<12} {f[held]:.4f} ({f[held] - today[held]:+.4f}){fr} with {dec}")
    print("  mean4", round(float(np.mean([lo[s] for s in GOLD_SETS])), 4), "today", round(float(np.mean([today[s] for s in GOLD_SETS])), 4))
    if a.save:
        with open(a.save, "wb") as fh:
            pickle.dump(results, fh)


if __name__ == "__main__":
    main()
