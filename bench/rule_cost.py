"""What each boilerplate rule costs and finds on real lines: for rule authors.

The rule matcher (``tasks/stages/rulematch.py``) tries a rule's regex only on the lines its
literals and edges admit, in rule order, until one matches. A rule tried on many lines that
matches few of them costs CPU for little: give it a more selective literal (``keywords``), tie it
to the line's start or end (``match = "full"``, or ``^``/``$``), or lower its ``max_chars``.

    PYTHONPATH=. .venv/bin/python bench/rule_cost.py                          # the eval pages, every built-in pack
    PYTHONPATH=. .venv/bin/python bench/rule_cost.py --packs common,en,fr --extra my_site.toml
    PYTHONPATH=. .venv/bin/python bench/rule_cost.py --lines page1.txt page2.txt --top 20

Lines: every distinct stripped line of the given text files (default: the naive text dumps
``NAME.raw.txt`` of ``../shared/eval/boilerplate/pages`` and ``../shared/eval/boilerplate-gold/pages``),
each counted once, as the stage's per-line memo would. Per rule: *tried* (its regex was run on
the line, the verdict's real cost), *matched*, and their ratio; sorted by *tried*.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.eval_boilerplate import DEFAULT_GOLD, DEFAULT_PAGES  # noqa: E402
from corpusclean.tasks.stages.boilerplate import available_packs, fold, load_rule_packs  # noqa: E402
from corpusclean.tasks.stages.rulematch import RuleMatcher  # noqa: E402

DEFAULT_DIRS = (DEFAULT_PAGES, DEFAULT_GOLD)
BATCH = 20_000


def rule_costs(rules, lines: list[str]) -> tuple[Counter, Counter]:
    """(tried, matched) per rule index: how often the matcher ran each rule's regex on ``lines``
    while finding each line's first matching rule, and how often it matched."""
    matcher = RuleMatcher(rules)
    tried: Counter = Counter()
    matched: Counter = Counter()

    def counted(k, test):
        def run(*args):
            tried[k] += 1
            found = test(*args)
            if found:
                matched[k] += 1
            return found
        return run

    # instrument this matcher's own regex tests (both the general and the ASCII-line ones)
    matcher._tests = [counted(k, t) for k, t in enumerate(matcher._tests)]
    matcher._ascii_tests = [counted(k, t) for k, t in enumerate(matcher._ascii_tests)]
    for start in range(0, len(lines), BATCH):
        chunk = lines[start : start + BATCH]
        matcher.first_matches(chunk, [fold(line) for line in chunk])
    return tried, matched


def read_lines(paths: list[Path]) -> list[str]:
    """The distinct non-empty stripped lines of the files (sorted: the same order every run)."""
    seen: set[str] = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line:
                seen.add(line)
    return sorted(seen)


def rule_name(rule) -> str:
    """The rule's id as its source names it ("en.toml rule #3 (en-share)" -> "en-share")."""
    source = rule.source
    return source[source.rfind("(") + 1 : -1] if source.endswith(")") else source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packs", default=None, help="comma-separated built-in packs (default: every one)")
    parser.add_argument("--extra", type=Path, action="append", default=[], help="your own rule file (repeatable)")
    parser.add_argument("--lines", type=Path, nargs="+", help="text files, one paragraph per line (default: the eval pages)")
    parser.add_argument("--top", type=int, default=40, help="rules shown (most tried first; 0: all)")
    args = parser.parse_args(argv)

    packs = args.packs.split(",") if args.packs else available_packs()
    rules = load_rule_packs(packs, args.extra)
    if args.lines:
        paths = args.lines
    else:
        missing = [d for d in DEFAULT_DIRS if not d.is_dir()]
        if missing:
            print(f"error: {missing[0]} not found (give --lines FILE...)", file=sys.stderr)
            return 2
        paths = sorted(p for d in DEFAULT_DIRS for p in d.glob("*.raw.txt"))
    lines = read_lines(paths)
    tried, matched = rule_costs(rules, lines)
    total = sum(tried.values())
    print(f"{len(lines):,} distinct lines, {len(rules)} rules ({', '.join(packs)}"
          f"{', ' + ', '.join(map(str, args.extra)) if args.extra else ''}): {total:,} regex runs, "
          f"{sum(matched.values()):,} matches")
    print(f"{'rule':34} {'reason':18} {'tried':>9} {'matched':>9} {'yield':>7}")
    shown = sorted(range(len(rules)), key=lambda k: (-tried[k], k))
    for k in shown[: args.top or None]:
        if not tried[k]:
            break
        print(f"{rule_name(rules[k]):34} {rules[k].reason:18} {tried[k]:9,} {matched[k]:9,} {matched[k] / tried[k]:7.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
