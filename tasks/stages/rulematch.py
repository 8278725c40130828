"""All rules against all lines of a batch at once: a literal prefilter, then the exact regexes.

Real web pages are mostly short menu and link lines, and about 2% of them match any rule, so
trying ~100 regexes per line in Python was most of the boilerplate stage's cost. Here:

1. **Necessary literals.** Each rule's pattern (or each top-level branch of it) is parsed
   (Python's own regex parser) into a set of literal strings of which every match must contain
   at least one (``required_literals``: a sequence needs any one of its parts, an alternation
   one of each branch, an optional part nothing). A rule's ``keywords`` are such a set too.
   A match tied to the line's start (a full match, or a branch opening with ``^``) must also
   start with one of a finite set of strings, and one tied to its end end with one
   (``anchored_literals``): "\nshare" (a line starting with "share") is a far rarer filter than
   "share" anywhere. The most selective option is used, per rule or per branch
   (``_literal_plan``; ``_selectivity``: a rare symbol counts as much as a long word, an anchor
   as three characters). Rules with no usable literal are tried on every line their edges admit.
   Strings inside ``(?-i:...)`` ("AP", "DR": agency acronyms) are *cased*: scanned as written,
   not case-folded ("ap" is in "map"). A branch whose best set is weak ("/") also needs a second
   of its necessary sets (``necessary_sets``) in the line: each branch is a *unit* of one or two
   sets, all found for the rule to be a candidate. Punctuation every match holds that no set
   scans for (``symbol_checks``: the ":" of "Photo: NAME") is tested before the regex.
2. **Edges.** A full-match rule can only match a line whose first and last characters one of
   its branches can start and end with (``edge_atoms``, exact for the flags in force); a
   search branch tied to the line's start or end by ``^`` or ``$``, a line whose first or last
   character it can start or end with.
3. **One pass.** The lines of a whole batch are case-folded exactly as the regex engine folds
   them under ``IGNORECASE`` (its simple lower-casing plus its extra equivalences, e.g. ſ ~ s;
   ASCII lines by ``str.lower()`` as one string), joined between "\n"s, and scanned once by
   hyperscan (Vectorscan, literal mode: every occurrence of every literal, overlapping ones
   too) for every literal of every rule; the cased literals by a second database over the
   folded lines as written. A match maps back to its line with one ``numpy.searchsorted``.
4. **Exact confirmation.** A line's candidate rules (a literal of theirs in it and their edges
   admitting it) are tried in rule order with the rule's own ``Rule._test``. So the verdict is
   by construction the first rule that matches — the same as trying every rule in order — as
   long as the filters are necessary conditions, which ``tests/tasks/stages/test_rulematch.py``
   checks rule by rule and line by line on real pages and on case-folding edge cases.

What step 1 derives from the patterns (the literals, their hyperscan databases, the symbol
checks) depends on the rules alone and costs ~1.2 CPU s per worker: it is kept on disk between processes
(``_MatcherPlan``: ``tasks/stages/__pycache__/rulematch/``, else ``~/.cache/corpusclean``).

Whole rules in one hyperscan database (``HS_FLAG_PREFILTER``) were measured and not kept: the
packs' patterns are large word alternations inside repeats, and compiling them took minutes
(docs/performance.md, *Rule matching by hyperscan*).
"""

from __future__ import annotations

import hashlib
import operator
import pickle
import re
import sys
import threading
import re._casefix as _casefix  # the regex engine's extra case equivalences (stdlib, 3.11+)
import re._constants as _c
import re._compiler as _compiler
import re._parser as _parser
from collections.abc import Sequence
from functools import lru_cache
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import _sre
import hyperscan
import numpy as np

from ..plumbing.filecache import cache_dirs, cached

if TYPE_CHECKING:  # pragma: no cover
    from .boilerplate import Rule

MIN_LITERAL = 2  # single letters occur in most lines: no filtering power (symbols excepted)
_MAX_EXACT = 64  # bound on the strings a sub-pattern is expanded into


# ---------------------------------------------------------------------------------------------
# Case folding that agrees with the regex engine


class _FoldTable(dict):
    """Code point -> the representative of its ``IGNORECASE`` class, computed when first met
    (``str.translate`` asks a dict subclass's ``__missing__``), so no process pays for a table
    of every code point it never sees."""

    def __missing__(self, cp: int) -> int:
        lo = _sre.unicode_tolower(cp)
        canon = self[cp] = min((lo, *_casefix._EXTRA_CASES.get(lo, ())))
        return canon


_FOLD_TABLE = _FoldTable()


def casefold(text: str) -> str:
    """``text`` with each character replaced by the representative of its ``IGNORECASE`` class.

    Two characters match each other under ``re.IGNORECASE`` (Unicode) iff their folds are equal,
    so a regex match of a literal run implies the folded text contains the folded literal.
    """
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD_TABLE)


def _lower_fixes() -> dict[str, str]:
    """The characters ``str.lower()`` gives whose fold is another character (ſ, ı, ι, µ, σ...):
    all among the regex engine's extra case equivalences (the tests check every code point)."""
    chars = {chr(k) for k in _casefix._EXTRA_CASES} | {chr(v) for vs in _casefix._EXTRA_CASES.values() for v in vs}
    return {c: casefold(c) for c in sorted(chars) if c.lower() == c and casefold(c) != c}


_LOWER_FIX: dict[str, str] | None = None
_LOWER_FIX_RE: re.Pattern | None = None


def casefold_text(text: str) -> str:
    """``casefold(text)``, computed as ``str.lower()`` of the whole text and a fix of the ~26
    characters whose fold is not their lower case (Greek ι σ µ..., ſ, ı): the same string,
    several times faster than a per-character table on non-ASCII text.

    Exact because, for every code point but U+0130 (İ, whose lower case is two characters),
    ``casefold(c) == FIX(c.lower())`` (the tests check every code point), and the one
    context-dependent mapping of ``str.lower()``, final sigma (Σ -> ς or σ), folds to ς
    either way. Text with an İ takes ``casefold``.
    """
    global _LOWER_FIX, _LOWER_FIX_RE
    if text.isascii():
        return text.lower()
    if "\u0130" in text:
        return text.translate(_FOLD_TABLE)
    if _LOWER_FIX_RE is None:
        _LOWER_FIX = _lower_fixes()
        _LOWER_FIX_RE = re.compile("[" + "".join(re.escape(c) for c in sorted(_LOWER_FIX)) + "]")
    low = text.lower()
    if _LOWER_FIX_RE.search(low) is not None:
        fixes = _LOWER_FIX
        low = _LOWER_FIX_RE.sub(lambda m: fixes[m.group()], low)
    return low


# ---------------------------------------------------------------------------------------------
# Necessary literals of a pattern

# A sub-pattern's summary: ``exact`` - the finite set of strings it matches (None: too many or
# unbounded), ``need`` - a set of strings one of which any match contains (None: no requirement).


_COMMON_PUNCTUATION = frozenset(".,;:!?'\"()-")
_RARE_LETTERS = frozenset("jqxz")  # about as rare in a line as a two-letter literal


def _selectivity(literal: str) -> int:
    """How rare a literal is, as a length: letters, digits and sentence punctuation count 1
    (the rare letters j, q, x, z count 2: "x" as a network name), spaces nothing, other ASCII
    symbols 2 ("/" is rarer than "ap"), other symbols 3 (©, ▶, ⤵)."""
    score = 0
    for c in literal:
        if c == _CASED:
            continue
        if c in _RARE_LETTERS:
            score += 2
        elif c.isalnum() or c in _COMMON_PUNCTUATION:
            score += 1
        elif c.isspace():
            continue
        else:
            score += 2 if c.isascii() else 3
    return score


def _best(*options: frozenset[str] | None) -> frozenset[str] | None:
    """The most selective requirement: the one whose least selective string is best."""
    best, score = None, 0
    for option in options:
        if option is None or not option:
            continue
        shortest = min(_selectivity(s) for s in option)
        if shortest > score or (shortest == score and best is not None and len(option) < len(best)):
            best, score = option, shortest
    return best if score > 0 else None


def _sequence_needs(items) -> tuple[frozenset[str], list[frozenset[str] | None]]:
    """(the exact strings of the sequence's last run of items, the sets required before it):
    every set is necessary on its own; with no set before it, the run is all the sequence matches."""
    needs: list[frozenset[str] | None] = []
    run: frozenset[str] = frozenset({""})  # exact strings of the current run of items
    for op, av in items:
        exact, need = _item(op, av)
        if exact is not None and len(run) * len(exact) <= _MAX_EXACT:
            run = frozenset(_concat(a, b) for a, b in product(run, exact))
            continue
        # the run is broken: what it matched exactly is required, and so is this item's part
        needs.append(run)
        needs.append(exact if exact is not None else need)
        run = exact if exact is not None and len(exact) <= _MAX_EXACT else frozenset({""})
    return run, needs


def _summarise(items) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """(exact, need) of a sequence of parsed regex items."""
    run, needs = _sequence_needs(items)
    if not needs:
        return run, run
    return None, _best(*needs, run)


# A string a regex must contain as written (inside ``(?-i:...)``: "AFP", not "afp" or "Afp") is
# marked by a leading _CASED. Joined to other strings (``_concat``) it keeps the mark only if
# they are cased too or empty; ``_finish`` drops marks inside a string (mixed: scanned folded).
_CASED = "\0"


def _cased(strings: frozenset[str] | None) -> frozenset[str] | None:
    if strings is None:
        return None
    return frozenset(_CASED + x.replace(_CASED, "") if x else x for x in strings)


def _concat(a: str, b: str) -> str:
    if not a or not b:
        return a or b
    cased_a, cased_b = a.startswith(_CASED), b.startswith(_CASED)
    if cased_a and cased_b:
        return a + b[1:]  # both cased: still one cased string
    if cased_a or cased_b:
        return (a + b).replace(_CASED, "")  # mixed: scanned folded
    return a + b


def _unmarked(literal: str) -> str:
    """A literal case-folded, its marks dropped: what any match of it holds once folded."""
    return casefold(literal.replace(_CASED, ""))


def _finish(literal: str) -> str:
    """A literal as scanned: a cased one as written (marked), any other case-folded."""
    if literal.startswith(_CASED) and _CASED not in literal[1:]:
        return literal
    return _unmarked(literal)


def _adds_ignorecase(items) -> bool:
    """Whether a group in ``items`` turns ``IGNORECASE`` back on (``(?i:...)``)."""
    for op, av in items:
        if op is _c.SUBPATTERN and (av[1] & re.IGNORECASE or _adds_ignorecase(av[3])):
            return True
        if op is _c.ATOMIC_GROUP and _adds_ignorecase(av):
            return True
        if op is _c.BRANCH and any(_adds_ignorecase(b) for b in av[1]):
            return True
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT) and _adds_ignorecase(av[2]):
            return True
        if op in (_c.ASSERT, _c.ASSERT_NOT) and _adds_ignorecase(av[1]):
            return True
    return False


def _item(op, av) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    if op is _c.LITERAL:
        return frozenset({chr(av)}), frozenset({chr(av)})
    if op is _c.SUBPATTERN:
        exact, need = _summarise(av[3])
        if av[2] & re.IGNORECASE and not _adds_ignorecase(av[3]):
            # (?-i:...): its strings are matched as written, case and all
            exact, need = _cased(exact), _cased(need)
        return exact, need
    if op is _c.ATOMIC_GROUP:
        return _summarise(av)
    if op is _c.BRANCH:
        exacts, needs = [], []
        for branch in av[1]:
            exact, need = _summarise(branch)
            exacts.append(exact)
            needs.append(exact if exact is not None else need)
        if all(e is not None for e in exacts) and sum(len(e) for e in exacts) <= _MAX_EXACT:
            union = frozenset().union(*exacts)
            return union, union
        if any(n is None or "" in n for n in needs):
            return None, None
        return None, frozenset().union(*needs)
    if op is _c.IN:
        chars = []
        for kind, value in av:
            if kind is not _c.LITERAL:
                return None, None
            chars.append(chr(value))
        if 0 < len(chars) <= 8:
            return frozenset(chars), frozenset(chars)
        return None, None
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, high, body = av
        exact, need = _summarise(body)
        if low == 0:
            if high == 1 and exact is not None and len(exact) < _MAX_EXACT:
                return exact | {""}, None  # optional part: its strings or nothing
            return None, None
        if low == high == 1:
            return exact, need
        return None, exact if exact is not None else need
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
        return frozenset({""}), None  # zero-width: matches no characters
    return None, None  # ANY, NOT_LITERAL, CATEGORY, GROUPREF...: no literal


@lru_cache(maxsize=4096)  # packs share patterns and variables: parse each one once per process
def required_literals(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Strings (case-folded) one of which every match of ``pattern`` contains; ``None`` if unknown.

    Only literals of at least ``MIN_LITERAL`` characters are returned (shorter ones filter nothing).
    """
    marked = _required_marked(pattern, flags)
    return None if marked is None else frozenset(map(_unmarked, marked))


@lru_cache(maxsize=4096)
def _required_marked(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """``required_literals`` with the cased ones as written (marked, ``_finish``)."""
    exact, need = _summarise(_parser.parse(pattern, flags))
    best = _best(exact, need)
    if best is None or min(_selectivity(s) for s in best) < MIN_LITERAL:
        return None
    return frozenset(_finish(s) for s in best)


@lru_cache(maxsize=4096)
def necessary_sets(pattern: str, flags: int = 0) -> tuple[frozenset[str], ...]:
    """Every set of strings found in the pattern's top-level sequence of which each match
    contains one (``_finish``ed), each at least ``MIN_LITERAL`` selective, the most selective first.

    Any two of them are a conjunction: "/" and an agency name, both required by a credit line.
    """
    items = _top_sequence(pattern, flags)
    if len(items) == 1:
        exact, need = _item(*items[0])
        sets = [exact if exact is not None else need]
    else:
        run, needs = _sequence_needs(items)
        sets = [*needs, run]
    usable = {frozenset(_finish(x) for x in strings) for strings in sets if strings and _score(strings) >= MIN_LITERAL}
    return tuple(sorted(usable, key=lambda x: (-_score(x), len(x), sorted(x))))


def rule_literals(rule: "Rule") -> frozenset[str] | None:
    """A rule's necessary literals: from its pattern, or its keywords (the more selective)."""
    marked = _rule_literals_marked(rule)
    return None if marked is None else frozenset(map(_unmarked, marked))


def _rule_literals_marked(rule: "Rule") -> frozenset[str] | None:
    """``rule_literals`` with the cased ones as written (``_finish``)."""
    from_pattern = _required_marked(rule.pattern.pattern, rule.pattern.flags)
    from_keywords = frozenset(casefold(k) for k in rule.keywords) if rule.keywords else None
    # Keywords are tested against str.lower(), which turns İ into i + U+0307 where the fold
    # gives i: a keyword with U+0307 is in the lowered line, not in the folded one.
    # A rule's keywords are its author's prefilter: used whatever their length ("/", "©").
    if from_keywords is not None and (not all(from_keywords) or any("\u0307" in k for k in from_keywords)):
        from_keywords = None
    return _best(from_pattern, from_keywords)


# A match that must start at the line's start (a full match, or a branch opening with ``^``) starts
# with one of a finite set of strings (``anchored``), often a far rarer filter than a literal
# anywhere: "share" at the start of a line, not in every line that mentions sharing. The lines
# are scanned as "\n" + lines joined by "\n" + "\n", so "\nshare" is "share" at a line's start
# and "photo\n" "photo" at its end.

_MAX_ANCHORED = 64  # bound on the strings a match's start (end) is expanded into
_ANCHOR_BONUS = 3  # a literal tied to a line's edge counts as three more characters


def _combine(run: frozenset[str], part: frozenset[str], last: bool) -> frozenset[str]:
    return frozenset((b + a if last else a + b) for a, b in product(run, part))


def _anchored_seq(items, last: bool) -> frozenset[str]:
    """Strings one of which every match of the sequence starts (``last``: ends) with; may hold ""."""
    run: frozenset[str] = frozenset({""})
    for op, av in (reversed(items) if last else items):
        if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
            continue  # zero-width: consumes nothing
        exact, _ = _item(op, av)
        if exact is not None and len(run) * len(exact) <= _MAX_ANCHORED:
            run = _combine(run, exact, last)
            continue
        part = _anchored_item(op, av, last)  # how this item's matches start, then stop
        if part is not None and "" not in part and len(run) * len(part) <= _MAX_ANCHORED:
            run = _combine(run, part, last)
        return run
    return run


def _anchored_item(op, av, last: bool) -> frozenset[str] | None:
    if op is _c.SUBPATTERN:
        return _anchored_seq(av[3], last)
    if op is _c.ATOMIC_GROUP:
        return _anchored_seq(av, last)
    if op is _c.BRANCH:
        parts = [_anchored_seq(b, last) for b in av[1]]
        if sum(len(p) for p in parts) > _MAX_ANCHORED:
            return None
        return frozenset().union(*parts)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT) and av[0] >= 1:
        return _anchored_seq(av[2], last)
    return None


@lru_cache(maxsize=4096)
def anchored_literals(pattern: str, flags: int, start: bool, end: bool) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """(strings every match starts with, strings it ends with), case-folded, each ``None`` unless
    the match is tied to the line's start (end): ``start``/``end`` (a full match), or a ``^``
    (``$``) first (last) in the pattern, without ``re.MULTILINE``."""
    parsed = _parser.parse(pattern, flags)
    items = list(parsed.data)
    if not parsed.state.flags & re.MULTILINE and items:
        start = start or (items[0][0] is _c.AT and items[0][1] in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING))
        end = end or (items[-1][0] is _c.AT and items[-1][1] in (_c.AT_END, _c.AT_END_STRING))
    out = []
    for tied, last in ((start, False), (end, True)):
        strings = _anchored_seq(items, last) if tied else None
        if strings is None or "" in strings or "\n" in "".join(strings):
            out.append(None)
        else:
            out.append(frozenset(map(_unmarked, strings)))
    return out[0], out[1]


def _top_sequence(pattern: str, flags: int) -> list:
    """The parsed items of a pattern's top-level sequence (inside a group that is all of it)."""
    items = list(_parser.parse(pattern, flags).data)
    while len(items) == 1 and items[0][0] in (_c.SUBPATTERN, _c.ATOMIC_GROUP):
        op, av = items[0]
        if op is _c.SUBPATTERN:
            if av[2] & re.IGNORECASE:  # a (?-i:...) around everything: _item marks its sets
                break
            items = list(av[3])
        else:
            items = list(av)
    return items


@lru_cache(maxsize=4096)
def symbol_checks(pattern: str, flags: int = 0) -> tuple[tuple[str, ...], ...]:
    """Small sets of punctuation or symbols (no letter, digit or case: the same folded or not)
    of which every match contains one: ":" in "Photo: NAME". Too common to scan for, but a
    substring test on a candidate line is far cheaper than a regex that fails on it."""
    items = _top_sequence(pattern, flags)
    if len(items) < 2:
        return ()
    run, needs = _sequence_needs(items)
    checks = []
    for strings in (*needs, run):
        if not strings or len(strings) > 3 or any(not x or _CASED in x for x in strings):
            continue
        if all(not c.isalnum() and c.lower() == c == c.upper() and not c.isspace() for x in strings for c in x):
            checks.append(tuple(sorted(strings)))
    return tuple(dict.fromkeys(checks))


def _score(strings: frozenset[str] | None, bonus: int = 0) -> int:
    return -1 if not strings else min(_selectivity(x) for x in strings) + bonus


def _branch_options(pattern: str, flags: int, full: bool) -> list[tuple[int, frozenset[str]]]:
    """(score, scanned strings) of every filter of one branch, the best first: its necessary
    literals (``required_literals``, then each set of ``necessary_sets``), and the strings it must
    start or end the line with ("\n" + s, s + "\n"). Each is necessary on its own."""
    first, final = anchored_literals(pattern, flags, full, full)
    options = [
        (_score(need), need)
        for need in (_required_marked(pattern, flags), *necessary_sets(pattern, flags))
        if need
    ]
    if first:
        options.append((_score(first, _ANCHOR_BONUS), frozenset("\n" + x for x in first)))
    if final:
        options.append((_score(final, _ANCHOR_BONUS), frozenset(x + "\n" for x in final)))
    # the order of the former single choice: score, then fewer strings (stable otherwise)
    return sorted(options, key=lambda o: (-o[0], len(o[1])))


def _scanned_in(literal: str, other: str) -> bool:
    """Whether every line in which ``other`` is found (as scanned) also holds ``literal``."""
    if literal.startswith(_CASED):
        return other.startswith(_CASED) and literal[1:] in other[1:]
    return literal in (casefold(other[1:]) if other.startswith(_CASED) else other)


_WEAK_FIRST = 3  # a first set of at most this score ("/", "ap") gets a second one


def _second_factor(first: frozenset[str], options: list[tuple[int, frozenset[str]]]) -> frozenset[str] | None:
    """For a weak ``first`` set, the most selective option it does not imply, if selective enough
    to be worth its scanning (a cased string counts one more: "AP" as written is rare, "ap" is in
    "map"). A selective first set gets none: the second's hits would cost more than its tests."""
    if _score(first) > _WEAK_FIRST:
        return None
    for _, strings in options:
        if strings == first or all(any(_scanned_in(x, a) for x in strings) for a in first):
            continue
        if min(_selectivity(x) + x.startswith(_CASED) for x in strings) >= 3:
            return strings
    return None


def _literal_plan(rule: "Rule", branches: Sequence[str]) -> list[tuple[frozenset[str], ...]] | None:
    """When ``rule`` is a candidate for a line: a list of *units*, each one or two sets of
    strings (``_finish``ed; scanned in the line between "\n"s): the rule is a candidate when, for
    some unit, each of its sets has a string in the line. Every unit is necessary for a branch
    of the rule, and the units together for every branch. The first set is the whole rule's
    literals (pattern or keywords) or each branch's best filter, the more selective; a second
    set is another filter of the same match (``_second_factor``). ``None`` when some branch has
    no filter of at least ``MIN_LITERAL``."""
    whole = _rule_literals_marked(rule)
    whole_score = _score(whole)
    flags = rule.pattern.flags
    options = [_branch_options(b, flags, rule.full) for b in branches]
    if any(not o for o in options):
        branch_score = -1
    else:
        branch_score = min(o[0][0] for o in options)
        if len(options) == 1 and options[0][0][1] == whole:
            branch_score = -1
    # a tie goes to the branches when there are several: each branch's own filters (a second set
    # among them) are finer than one union of the whole rule's
    if whole_score >= MIN_LITERAL and (whole_score > branch_score or (whole_score == branch_score and len(branches) == 1)):
        if len(branches) == 1:
            whole_options = options[0]
        else:
            whole_options = [(_score(x), x) for x in necessary_sets(rule.pattern.pattern, flags)]
        second = _second_factor(whole, whole_options)
        return [(whole,) if second is None else (whole, second)]
    if branch_score >= MIN_LITERAL:
        units = []
        for branch_options in options:
            first = branch_options[0][1]
            second = _second_factor(first, branch_options[1:])
            units.append((first,) if second is None else (first, second))
        return units
    return None


# A full match starts (ends) with a character consumed by the first (last) item that consumes
# one, so it is matched by one of the one-character items ("atoms": a literal, a class, a
# negated literal) up to the first (from the last) item that cannot be empty. Each atom is
# compiled on its own with the flags in force where it stands, so testing a line's first and
# last characters against them is exact.


def _edge(items, state, flags: int, last: bool) -> tuple[list | None, bool]:
    """(atoms an edge character of a match of the sequence is matched by, or None for any; nullable)."""
    atoms: list = []
    for op, av in (reversed(items) if last else items):
        item_atoms, nullable = _edge_item(op, av, state, flags, last)
        if item_atoms is None:
            return None, False
        atoms.extend(item_atoms)
        if not nullable:
            return atoms, False
    return atoms, True


def _edge_item(op, av, state, flags: int, last: bool) -> tuple[list | None, bool]:
    if op is _c.LITERAL:
        # a literal is a character (case-sensitive) or a class of characters with one fold
        return [("fold", casefold(chr(av))) if flags & re.IGNORECASE else ("char", chr(av))], False
    if op in (_c.NOT_LITERAL, _c.IN):
        return [("class", _compiler.compile(_parser.SubPattern(state, [(op, av)]), flags))], False
    if op is _c.SUBPATTERN:
        _, add, remove, body = av
        return _edge(body, state, (flags | add) & ~remove, last)
    if op is _c.ATOMIC_GROUP:
        return _edge(av, state, flags, last)
    if op is _c.BRANCH:
        atoms, nullable = [], False
        for branch in av[1]:
            branch_atoms, branch_nullable = _edge(branch, state, flags, last)
            if branch_atoms is None:
                return None, False
            atoms.extend(branch_atoms)
            nullable = nullable or branch_nullable
        return atoms, nullable
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, _, body = av
        atoms, nullable = _edge(body, state, flags, last)
        return atoms, nullable or low == 0
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):
        return [], True  # zero-width: the neighbouring item decides
    return None, False  # ANY, a group reference...


@lru_cache(maxsize=2048)
def edge_atoms(pattern: str, flags: int = 0, last: bool = False, full: bool = True) -> "EdgeAtoms | None":
    """What the first (``last``: the last) character of any non-empty full match of ``pattern``
    is matched by; None when any character may.

    ``full=False``: the same for the line a ``search`` of ``pattern`` matches, which is only
    known when the pattern is tied to that edge of the line (a ``^``/``$`` first/last in it,
    without ``re.MULTILINE``) and cannot match the empty string there (``"x?$"`` matches any line).
    """
    parsed = _parser.parse(pattern, flags)
    items = list(parsed.data)
    if not full:
        anchor = (_c.AT_END, _c.AT_END_STRING) if last else (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING)
        edge = (items[-1] if last else items[0]) if items else None
        if parsed.state.flags & re.MULTILINE or edge is None or edge[0] is not _c.AT or edge[1] not in anchor:
            return None
    atoms, nullable = _edge(items, parsed.state, parsed.state.flags, last)
    if atoms is None or (nullable and not full):
        return None
    return EdgeAtoms(
        frozenset(v for kind, v in atoms if kind == "char"),
        frozenset(v for kind, v in atoms if kind == "fold"),
        tuple(v for kind, v in atoms if kind == "class"),
    )


class EdgeAtoms(tuple):
    """(exact characters, case-folded characters, compiled one-character classes)."""

    def __new__(cls, chars: frozenset, folds: frozenset, classes: tuple):
        return super().__new__(cls, (chars, folds, classes))

    def admits(self, char: str) -> bool:
        chars, folds, classes = self
        return char in chars or casefold(char) in folds or any(c.fullmatch(char) is not None for c in classes)


# ---------------------------------------------------------------------------------------------
# The matcher


def _tester(rule: "Rule"):
    """A function of a folded line, not ``None`` when the rule matches it (``Rule._test``)."""
    if not rule.keywords:
        return rule.pattern.fullmatch if rule.full else rule.pattern.search
    return lambda folded: True if rule._test(folded, None) else None


def _checked(test, checks: list[tuple[str, ...]]):
    """``test``, run only on a line holding a string of each of ``checks`` (else ``None``)."""
    if len(checks) == 1 and len(checks[0]) == 1:
        (symbol,), = checks
        return lambda folded: test(folded) if symbol in folded else None
    return lambda folded: test(folded) if all(any(x in folded for x in c) for c in checks) else None


def _signature(rule: "Rule") -> tuple:
    return (rule.pattern.pattern, rule.pattern.flags, rule.full, rule.min_chars, rule.max_chars, rule.keywords)


class _MatcherPlan:
    """What a ``RuleMatcher`` derives from its rules' patterns alone: each rule's top-level
    branches, the rules without a usable literal, and per line-length tier the literals with
    their compiled hyperscan database. Parsing every pattern and compiling the databases is
    ~1.2 CPU s for the packs a worker uses; every worker of every run used to pay it while the
    run started (the CPU is short then: the API server and the other workers start too). So a
    plan is kept on disk, keyed by the rules and by this module's code, and a process that finds
    it loads it (~10 ms) instead. Any failure to read or write the cache just builds the plan."""

    __slots__ = ("branches", "no_literal", "keyword_plans", "units", "tiers", "checks")

    def __init__(self, branches: list[tuple[str, ...]], no_literal: list[int], keyword_plans: list[int],
                 units: list[tuple[int, int]], tiers: list[tuple], checks: list[tuple[tuple[str, ...], ...]]):
        self.checks = checks  # each rule's symbol_checks not already scanned for
        self.branches = branches
        self.no_literal = no_literal
        self.keyword_plans = keyword_plans  # rules whose literals are exactly their (ASCII) keywords
        self.units = units  # (rule, how many sets) of each unit of ``_literal_plan``
        # (lower, upper, then for the folded and the cased scan: literals, _LiteralScanner or
        # None, pointers, codes (unit * 2 + which set))
        self.tiers = tiers

    @classmethod
    def for_rules(cls, rules: Sequence["Rule"]) -> "_MatcherPlan":
        return cached(_plan_dirs(), f"{_plan_key(rules)}.plan", cls.loads, lambda: cls.build(rules), cls.dumps,
                      keep=_MAX_PLANS)

    @classmethod
    def build(cls, rules: Sequence["Rule"]) -> "_MatcherPlan":
        literals: dict[str, set[int]] = {}  # literal -> codes: unit * 2 + which set of the unit
        no_literal: list[int] = []  # rules tried on every line their edges admit
        keyword_plans: list[int] = []
        units: list[tuple[int, int]] = []
        branches: list[tuple[str, ...]] = []
        for k, rule in enumerate(rules):
            branches.append(_top_level_branches(rule.pattern.pattern) or (rule.pattern.pattern,))
            plan = _literal_plan(rule, branches[-1])
            if plan is None:
                no_literal.append(k)  # a branch without a literal: the rule is tried on every admitted line
                continue
            if rule.keywords and all(w.isascii() and casefold(w) == w for w in rule.keywords) \
                    and len(plan) == 1 and plan[0][0] == frozenset(rule.keywords):
                keyword_plans.append(k)
            for sets in plan:
                unit = len(units)
                units.append((k, len(sets)))
                for which, strings in enumerate(sets):
                    for lit in strings:
                        literals.setdefault(lit, set()).add(unit * 2 + which)
        # Lines are scanned by length tier: a line of (lower, upper] characters only by the literals
        # of rules that admit more than ``lower`` characters (the others cannot match it). Long
        # lines, where most of the text is, are scanned by a few hundred literals instead of
        # thousands: far fewer hits to turn into candidates. Two tiers: each is a hyperscan
        # database to compile (~0.1 s per thousand literals), more cost more than they saved.
        def max_of(code: int) -> int:
            limit = rules[units[code >> 1][0]].max_chars
            return 2**62 if limit is None else limit

        tiers = []
        bounds = [t for t in _TIERS if any(r.max_chars is None or r.max_chars > t for r in rules)]
        for lower, upper in zip(bounds, bounds[1:] + [None]):
            tier = {key: cs for key, cs in ((key, [c for c in sorted(codes) if max_of(c) > lower]) for key, codes in literals.items()) if cs}
            folded = {key: cs for key, cs in tier.items() if not key.startswith(_CASED)}
            cased = {key[1:]: cs for key, cs in tier.items() if key.startswith(_CASED)}
            if tier:
                tiers.append((lower, upper, *_automaton(folded), *_automaton(cased)))
        # symbols every match holds that the scan does not look for (tested before the regex)
        scanned: list[set[str]] = [set() for _ in rules]
        for literal, codes in literals.items():
            for code in codes:
                scanned[units[code >> 1][0]].add(literal)
        checks = [
            tuple(c for c in symbol_checks(rule.pattern.pattern, rule.pattern.flags) if not set(c) <= scanned[k])
            for k, rule in enumerate(rules)
        ]
        return cls(branches, no_literal, keyword_plans, units, tiers, checks)

    def dumps(self) -> bytes:
        def scanner_bytes(scanner):
            return None if scanner is None else hyperscan.dumpb(scanner.db)

        tiers = [(lower, upper, keys, scanner_bytes(scanner), ptr, codes, ckeys, scanner_bytes(cscanner), cptr, ccodes)
                 for lower, upper, keys, scanner, ptr, codes, ckeys, cscanner, cptr, ccodes in self.tiers]
        return pickle.dumps((self.branches, self.no_literal, self.keyword_plans, self.units, tiers, self.checks),
                            protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> "_MatcherPlan":
        branches, no_literal, keyword_plans, units, tiers, checks = pickle.loads(data)

        def scanner(keys, db):
            return None if db is None else _LiteralScanner([key.encode("utf-8") for key in keys], serialized=db)

        return cls(branches, no_literal, keyword_plans, units, [
            (lower, upper, keys, scanner(keys, db), ptr, codes, ckeys, scanner(ckeys, cdb), cptr, ccodes)
            for lower, upper, keys, db, ptr, codes, ckeys, cdb, cptr, ccodes in tiers
        ], checks)


_PLAN_FORMAT = 3


def _plan_dirs() -> list[Path]:
    """Where plans are kept (``tasks.plumbing.filecache``)."""
    return cache_dirs(Path(__file__), "rulematch")


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """This module's source, hyperscan's and Python's versions: a plan is only valid for them."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(f"{_PLAN_FORMAT} {hyperscan.__version__} {sys.version_info[:3]}".encode())
    return digest.hexdigest()


def _plan_key(rules: Sequence["Rule"]) -> str:
    digest = hashlib.sha256(_code_digest().encode())
    for rule in rules:
        digest.update(repr(_signature(rule)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:40]


_MAX_PLANS = 64  # plans kept per folder (each pack list, each edited user rule file adds one)


_MATCHERS: dict[tuple, "RuleMatcher"] = {}


def matcher_for(rules: Sequence["Rule"]) -> "RuleMatcher":
    """A ``RuleMatcher`` for these rules, shared by every classifier of the process with the same
    rules (building one parses every pattern: ~0.5 s; a worker cleans many shards)."""
    key = tuple(_signature(r) for r in rules)
    matcher = _MATCHERS.get(key)
    if matcher is None:
        if len(_MATCHERS) >= 32:
            _MATCHERS.clear()
        matcher = _MATCHERS[key] = RuleMatcher(rules)
    return matcher


class RuleMatcher:
    """The first matching rule of each line, for many lines at once (same answer as in order)."""

    def __init__(self, rules: Sequence["Rule"]):
        self.rules = list(rules)
        # Two filters, each a necessary condition of a match:
        # - literals: one of a rule's (or a top-level branch's) literals occurs in the line;
        # - edges: a full-match branch can only match a line whose first and last characters
        #   its edge atoms admit (``edge_atoms``); a search branch tied to the line's start
        #   (end) by ``^`` (``$``), a line whose first (last) character they admit.
        # A rule is a candidate for a line when its edges admit the line AND one of its
        # literals occurs in it (or it has no usable literal). The literals and their scanners
        # are a pure function of the rules, kept on disk between processes (``_MatcherPlan``).
        plan = _MatcherPlan.for_rules(self.rules)
        edges: dict[int, list | None] = {}  # rule -> [(first atoms, last atoms)] per branch; None: any line
        for k, rule in enumerate(self.rules):
            # a search branch tied to the line's start or end ("^Photo:", "(Photo: AFP)$") has an edge too
            flags, full = rule.pattern.flags, rule.full
            pairs = [(edge_atoms(b, flags, False, full), edge_atoms(b, flags, True, full)) for b in plan.branches[k]]
            edges[k] = None if any(f is None and l is None for f, l in pairs) else pairs
        self._no_literal = frozenset(plan.no_literal)
        self._tiers = [(lower, upper, scanner, ptr, codes, cscanner, cptr, ccodes)
                       for lower, upper, _k, scanner, ptr, codes, _ck, cscanner, cptr, ccodes in plan.tiers]
        # each unit's rule, and whether it needs both of its sets (``_literal_plan``)
        self._unit_rule = np.array([k for k, _ in plan.units] or [0], dtype=np.int64)
        self._unit_pair = np.array([n == 2 for _, n in plan.units] or [False], dtype=bool)
        # Branch j (of rule _branch_rule[j]) as a bit; a line's mask has the bits of the branches
        # whose first atoms admit its first character AND last atoms its last one. Masks are
        # cached per character, the admitted rules per mask.
        self._edges = edges
        self._branch_rule: list[int] = []
        self._branch_atoms: list[tuple] = []
        for k, pairs in sorted(edges.items()):
            for first, final in pairs if pairs is not None else [(None, None)]:
                self._branch_rule.append(k)
                self._branch_atoms.append((first, final))
        self._branch_rules = np.array(self._branch_rule, dtype=np.int64)
        self._mask_bytes = max(1, -(-len(self._branch_rule) // 8))
        self._first_mask: dict[str, int] = {}
        self._last_mask: dict[str, int] = {}
        # per side, the branches' atoms gathered by kind: (branches admitting any character,
        # character -> branches, folded character -> branches, [(class, branches)] with each
        # distinct one-character class once), so a new character costs one test per class
        self._side_atoms = [self._gather(side) for side in (0, 1)]
        # per side, code id (``_code_ids``) -> 1 + the id of its edge mask (0: not met yet),
        # mask -> 1 + id; and (first id, last id) -> row (-1: not met yet)
        self._side_ids = [np.zeros(1, dtype=np.int32) for _ in (0, 1)]
        self._side_masks: list[dict[int, int]] = [{}, {}]
        self._edge_lock = threading.RLock()  # numbering masks and rows (the tables are caches)
        self._pair_table = np.full((0, 0), -1, dtype=np.int64)
        self._mask_rows: dict[int, int] = {}  # branch mask -> row
        self._admitted_rules: list[np.ndarray] = []  # row -> which rules are admitted
        self._admitted_table: np.ndarray | None = None
        self._no_literal_order = sorted(self._no_literal)
        self._min_chars = np.array([r.min_chars for r in self.rules], dtype=np.int64)
        self._max_chars = np.array([r.max_chars if r.max_chars is not None else 2**62 for r in self.rules], dtype=np.int64)
        self._tests = [_tester(r) for r in self.rules]
        # On an ASCII line, a candidate of a rule whose literals are its keywords holds one of them
        # (the line was scanned as str.lower(), what the keyword test reads): the regex alone decides.
        self._ascii_tests = list(self._tests)
        for k in plan.keyword_plans:
            rule = self.rules[k]
            self._ascii_tests[k] = rule.pattern.fullmatch if rule.full else rule.pattern.search
        # symbols the scan does not look for, tested on a candidate before its regex
        for k, checks in enumerate(plan.checks):
            if checks:
                self._tests[k] = _checked(self._tests[k], list(checks))
                self._ascii_tests[k] = _checked(self._ascii_tests[k], list(checks))
        limits = [r.max_chars for r in self.rules if r.max_chars is not None]
        self.max_chars = None if any(r.max_chars is None for r in self.rules) else max(limits, default=0)

    def __reduce__(self):
        # the hyperscan databases are not picklable: a process worker rebuilds the matcher from the rules
        return (matcher_for, (self.rules,))

    def _gather(self, side: int) -> tuple[int, dict[str, int], dict[str, int], list[tuple[re.Pattern, int]]]:
        anything, by_char, by_fold, by_class = 0, {}, {}, {}
        for j, atoms in enumerate(self._branch_atoms):
            bit = 1 << j
            if atoms[side] is None:
                anything |= bit
                continue
            chars, folds, classes = atoms[side]
            for c in chars:
                by_char[c] = by_char.get(c, 0) | bit
            for c in folds:
                by_fold[c] = by_fold.get(c, 0) | bit
            for c in classes:  # compiled classes compare equal when their code is the same
                by_class[c] = by_class.get(c, 0) | bit
        return anything, by_char, by_fold, list(by_class.items())

    def _edge_mask(self, char: str, side: int, cache: dict[str, int]) -> int:
        """The branches whose atoms on ``side`` admit ``char`` (no atoms, or ``EdgeAtoms.admits``), as bits."""
        mask = cache.get(char)
        if mask is None:
            anything, by_char, by_fold, by_class = self._side_atoms[side]
            mask = anything | by_char.get(char, 0) | by_fold.get(casefold(char), 0)
            for pattern, bits in by_class:
                if pattern.fullmatch(char) is not None:
                    mask |= bits
            cache[char] = mask
        return mask

    def _admitted_row(self, first: str, last: str) -> int:
        """The row of ``_admitted_rules`` for a line with these first and last characters: which
        rules the line's edges admit (rules without edges admit every line)."""
        return self._mask_row(self._edge_mask(first, 0, self._first_mask) & self._edge_mask(last, 1, self._last_mask))

    def _mask_row(self, mask: int) -> int:
        """The row of ``_admitted_rules`` of a branch mask (added when new)."""
        row = self._mask_rows.get(mask)
        if row is None:
            with self._edge_lock:  # the thread runner's shards share the matcher: one row per mask
                row = self._mask_rows.get(mask)
                if row is None:
                    admitted = np.zeros(len(self.rules), dtype=bool)
                    bits = np.unpackbits(np.frombuffer(mask.to_bytes(self._mask_bytes, "little"), dtype=np.uint8),
                                         bitorder="little")
                    admitted[self._branch_rules[bits[: len(self._branch_rules)].astype(bool)]] = True
                    self._admitted_rules.append(admitted)
                    row = self._mask_rows[mask] = len(self._admitted_rules) - 1
                    self._admitted_table = None
        return row

    def _edge_rows_of(self, folded: list[str]) -> np.ndarray:
        """``_admitted_row`` of each line's first and last characters, read off their code points
        at once: a code point -> the id of its edge mask (per side, a table filled as characters
        are met), then a pair of ids -> the row (a small table). No per-line Python step."""
        n = len(folded)
        try:  # each line's first and last characters (no empty line: the common case)
            firsts = "".join(map(_FIRST_CHAR, folded))
            lasts = "".join(map(_LAST_CHAR, folded))
            empty = None
        except IndexError:
            firsts = "".join([f[0] if f else "\0" for f in folded])
            lasts = "".join([f[-1] if f else "\0" for f in folded])
            empty = np.fromiter(map(len, folded), dtype=np.int64, count=n) == 0
        ids = []
        for side, chars, cache in ((0, firsts, self._first_mask), (1, lasts, self._last_mask)):
            points = np.frombuffer(chars.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
            if empty is not None:
                points[empty] = _NO_CHAR
            codes = _code_ids(points)
            table = self._side_ids[side]
            if len(table) < len(_CODE_POINTS):
                table = self._side_ids[side] = np.concatenate((table, np.zeros(len(_CODE_POINTS) - len(table), np.int32)))
            side_ids = table[codes]
            if not side_ids.all():  # characters not met before on this side
                with self._edge_lock:  # mask ids numbered once, whatever threads share the matcher
                    masks = self._side_masks[side]
                    for code in np.unique(codes[side_ids == 0]).tolist():
                        point = _CODE_POINTS[code]
                        mask = self._edge_mask("" if point == _NO_CHAR else chr(point), side, cache)
                        table[code] = masks.setdefault(mask, len(masks) + 1)
                side_ids = table[codes]
            ids.append(side_ids.astype(np.int64) - 1)
        first_ids, last_ids = ids
        pair_rows = self._pair_table
        if pair_rows.shape[0] <= first_ids.max() or pair_rows.shape[1] <= last_ids.max():
            grown = np.full((len(self._side_masks[0]), len(self._side_masks[1])), -1, dtype=np.int64)
            grown[: pair_rows.shape[0], : pair_rows.shape[1]] = pair_rows
            pair_rows = self._pair_table = grown
        rows = pair_rows[first_ids, last_ids]
        if (rows < 0).any():  # pairs of masks not met before
            with self._edge_lock:
                side_masks = [list(self._side_masks[side]) for side in (0, 1)]  # id - 1 -> mask
            todo = np.unique(first_ids[rows < 0] * pair_rows.shape[1] + last_ids[rows < 0]).tolist()
            for key in todo:
                a, b = divmod(key, pair_rows.shape[1])
                pair_rows[a, b] = self._mask_row(side_masks[0][a] & side_masks[1][b])
            rows = pair_rows[first_ids, last_ids]
        return rows

    def _candidates(self, line_ids: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(line, rule) pairs from the scans' (line, code) hits: a unit of one set is a candidate
        wherever its set is found, a unit of two where both are (in the same line)."""
        units = codes >> 1
        pair = self._unit_pair[units]
        if not pair.any():
            return line_ids, self._unit_rule[units]
        one = ~pair
        n_units = len(self._unit_rule)
        keys = np.unique((line_ids[pair] * n_units + units[pair]) * 2 + (codes[pair] & 1))
        both = (keys[1:] >> 1) == (keys[:-1] >> 1)  # sorted: set 0 then set 1 of the same unit and line
        found = keys[1:][both] >> 1
        lines = np.concatenate((line_ids[one], found // n_units))
        rules = np.concatenate((self._unit_rule[units[one]], self._unit_rule[found % n_units]))
        return lines, rules

    def first_matches(self, lines: Sequence[str], folded: Sequence[str], lengths: np.ndarray | None = None) -> list[int]:
        """Index of the first matching rule of each line (``-1``: none).

        ``folded`` is ``tasks.stages.boilerplate.fold`` of each line (what rules see); ``lengths``
        the lines' lengths (int64), when the caller has them. The candidate
        (line, rule) pairs come from the filters as arrays; they are then tried in rounds: each
        pending line's next candidate in rule order, until one matches or none is left. That is
        the rules tried in order, line by line, without a Python loop per line and rule.
        """
        n = len(lines)
        if n == 0 or not self.rules:
            return [-1] * n
        if lengths is None:
            lengths = np.fromiter(map(len, lines), dtype=np.int64, count=n)
        # lines longer than every rule are left out of the scan
        scanned = np.arange(n) if self.max_chars is None else np.flatnonzero(lengths <= self.max_chars)
        if not len(scanned):
            return [-1] * n
        keep = scanned.tolist()
        n_rules = len(self.rules)
        pair_line = np.zeros(0, dtype=np.int64)
        pair_rule = np.zeros(0, dtype=np.int64)
        ascii_lines = None
        if self._tiers:
            # one scan per length tier (folded as re.IGNORECASE folds, the tier's lines at once)
            scanned_lengths = lengths[scanned]
            ascii_lines = np.fromiter(map(str.isascii, folded), dtype=bool, count=n)
            found_lines, found_codes = [], []
            for lower, upper, scanner, lit_ptr, lit_codes, cased_scanner, cased_ptr, cased_codes in self._tiers:
                inside = scanned_lengths > lower
                if upper is not None:
                    inside &= scanned_lengths <= upper
                tier_lines = scanned[inside]
                if not len(tier_lines):
                    continue
                # ASCII lines first (their fold is str.lower(), fast on an ASCII string), then the others
                in_ascii = ascii_lines[tier_lines]
                tier_lines = np.concatenate((tier_lines[in_ascii], tier_lines[~in_ascii]))
                parts = [folded[i] for i in tier_lines.tolist()]
                n_ascii = int(in_ascii.sum())
                # "\n" before and after every line: anchored literals are "\n" + start, end + "\n"
                ascii_text = "\n" + "\n".join(parts[:n_ascii]) if n_ascii else ""
                other_text = "\n" + "\n".join(parts[n_ascii:]) if n_ascii < len(parts) else ""
                if scanner is not None:
                    data = b"".join((
                        ascii_text.lower().encode("ascii"),
                        casefold_text(other_text).encode("utf-8", "surrogatepass"),
                        b"\n",
                    ))
                    found = _scan_pairs(scanner, data, parts, tier_lines, lit_ptr, lit_codes, casefold)
                    if found is not None:
                        found_lines.append(found[0])
                        found_codes.append(found[1])
                if cased_scanner is not None:  # literals matched as written: the folded lines themselves
                    data = b"".join((ascii_text.encode("ascii"), other_text.encode("utf-8", "surrogatepass"), b"\n"))
                    found = _scan_pairs(cased_scanner, data, parts, tier_lines, cased_ptr, cased_codes, None)
                    if found is not None:
                        found_lines.append(found[0])
                        found_codes.append(found[1])
            if found_lines:
                pair_line, pair_rule = self._candidates(np.concatenate(found_lines), np.concatenate(found_codes))
        # the edges admitted by each line's first and last characters
        rows = np.zeros(n, dtype=np.int64)
        rows[scanned] = self._edge_rows_of([folded[i] for i in keep])
        admitted = self._admitted_table
        if admitted is None or len(admitted) < len(self._admitted_rules):  # rows added (here or by another thread)
            admitted = self._admitted_table = np.array(self._admitted_rules, dtype=bool).reshape(-1, n_rules)
        # rules without a usable literal are candidates on every scanned line
        extra_lines = [scanned] * len(self._no_literal_order)
        if extra_lines:
            pair_line = np.concatenate([pair_line, *extra_lines])
            pair_rule = np.concatenate([pair_rule, *[np.full(len(scanned), k, dtype=np.int64) for k in self._no_literal_order]])
        # edges and length bounds
        ok = admitted[rows[pair_line], pair_rule]
        ok &= lengths[pair_line] >= self._min_chars[pair_rule]
        ok &= lengths[pair_line] <= self._max_chars[pair_rule]
        pairs = np.unique(pair_line[ok] * n_rules + pair_rule[ok])  # sorted by line, then rule
        out = np.full(n, -1, dtype=np.int64)
        if not len(pairs):
            return out.tolist()
        pair_line, pair_rule = np.divmod(pairs, n_rules)
        starts = np.flatnonzero(np.r_[True, pair_line[1:] != pair_line[:-1]])
        ends = np.r_[starts[1:], len(pairs)]
        # each round's candidates grouped by rule (one test function mapped over its lines), and
        # per rule ASCII lines apart (``_ascii_tests``)
        tests = (self._tests, self._ascii_tests)
        line_ascii = ascii_lines if ascii_lines is not None else np.fromiter(map(str.isascii, folded), dtype=bool, count=n)
        get = folded.__getitem__
        at = starts
        while len(at):
            line_ids, rule_ids = pair_line[at], pair_rule[at]
            key = rule_ids * 2 + line_ascii[line_ids]
            order = np.argsort(key, kind="stable")
            key_sorted = key[order]
            bounds = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1], True]).tolist()
            ordered_lines = line_ids[order].tolist()
            found_sorted = np.empty(len(at), dtype=bool)
            for a, b in zip(bounds, bounds[1:]):
                k, in_ascii = divmod(int(key_sorted[a]), 2)
                found_sorted[a:b] = [m is not None for m in map(tests[in_ascii][k], map(get, ordered_lines[a:b]))]
            found = np.empty(len(at), dtype=bool)
            found[order] = found_sorted
            out[line_ids[found]] = rule_ids[found]
            at, ends = at[~found] + 1, ends[~found]
            more = at < ends
            at, ends = at[more], ends[more]
        return out.tolist()


_NO_CHAR = 1 << 21  # an empty line's first and last "character" (beyond every code point)
_FIRST_CHAR, _LAST_CHAR = operator.itemgetter(0), operator.itemgetter(-1)
# Code points met by any matcher of the process, numbered from 1 in the order met: every
# matcher's per-side tables are indexed by these small ids (the one table over all code points
# is shared: its pages are only touched where characters are).
_CODE_IDS = np.zeros(_NO_CHAR + 1, dtype=np.int32)
_CODE_POINTS: list[int] = [0]  # id -> code point (0: none)
_CODE_LOCK = threading.Lock()


def _code_ids(points: np.ndarray) -> np.ndarray:
    """The id of each code point (``_NO_CHAR`` included), numbering the new ones."""
    ids = _CODE_IDS[points]
    if not ids.all():
        with _CODE_LOCK:  # the thread runner's shards share the numbering
            for point in np.unique(points[ids == 0]).tolist():
                if not _CODE_IDS[point]:
                    _CODE_IDS[point] = len(_CODE_POINTS)
                    _CODE_POINTS.append(point)
        ids = _CODE_IDS[points]
    return ids


_TIERS = (0, 250)  # lower bounds of the line-length tiers scanned by their own database


def _automaton(literals: dict[str, list[int]]):
    """(literals, scanner (None: no literals), literal i -> its codes as flat arrays: pointers, codes)."""
    keys = list(literals)
    ptr = np.cumsum([0] + [len(literals[key]) for key in keys]).astype(np.int64)
    codes = np.array([c for key in keys for c in literals[key]], dtype=np.int64)
    scanner = _LiteralScanner([key.encode("utf-8") for key in keys]) if keys else None
    return keys, scanner, ptr, codes


class _LiteralScanner:
    """Every occurrence of a set of byte strings (overlapping ones too), by one hyperscan scan."""

    def __init__(self, literals: list[bytes], serialized: bytes | None = None):
        self.lengths = np.array([len(x) for x in literals], dtype=np.int64)
        if serialized is not None:  # a database compiled before from these literals (``_MatcherPlan``)
            self.db = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
        else:
            self.db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self.db.compile(expressions=literals, ids=list(range(len(literals))), elements=len(literals), flags=0, literal=True)
        # A scan needs scratch space no other scan is using at the time: one per thread (the
        # thread runner cleans several shards at once with one matcher).
        self._local = threading.local()

    def _scratch(self) -> "hyperscan.Scratch":
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = hyperscan.Scratch(self.db)
        return scratch

    def scan(self, data: bytes) -> np.ndarray | None:
        """(literal, start) of every occurrence in ``data``, as rows; ``None`` if none."""
        ids: list[int] = []
        ends: list[int] = []
        add_id, add_end = ids.append, ends.append

        def on_match(literal, _start, end, _flags, _context):  # hyperscan reports no start without SOM
            add_id(literal)
            add_end(end)

        self.db.scan(data, match_event_handler=on_match, scratch=self._scratch())
        if not ids:
            return None
        found = np.empty((len(ids), 2), dtype=np.int64)
        found[:, 0] = ids
        found[:, 1] = np.array(ends, dtype=np.int64) - self.lengths[found[:, 0]]
        return found


def _scan_pairs(scanner: "_LiteralScanner", data: bytes, parts: list[str], scanned: np.ndarray, lit_ptr: np.ndarray,
                lit_codes: np.ndarray, fold_part) -> tuple[np.ndarray, np.ndarray] | None:
    """(line, code) of every literal found in ``data`` ("\n" + the ``parts`` joined by "\n" + "\n",
    each part folded by ``fold_part`` (None: as is); ``scanned``: the line of each part)."""
    hits = scanner.scan(data)
    if hits is None:
        return None
    # the "\n" before each line (in bytes); a hit belongs to the line its first byte is in
    anchors = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    if len(anchors) != len(parts) + 1:  # a line with a "\n" of its own
        sizes = [len((fold_part(part) if fold_part else part).encode("utf-8", "surrogatepass")) + 1 for part in parts]
        anchors = np.concatenate(([0], np.cumsum(sizes)))
    return _literal_pairs(hits, scanned, anchors, lit_ptr, lit_codes)


def _literal_pairs(found: np.ndarray, scanned: np.ndarray, anchors: np.ndarray, lit_ptr: np.ndarray,
                   lit_rules: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(line, rule) candidate pairs from a scan's (literal, start) rows (byte offsets in
    "\n" + the ``scanned`` lines joined by "\n" + "\n"; ``anchors``: the "\n" before each line)."""
    rows = np.searchsorted(anchors, found[:, 1], side="right") - 1
    lits = found[:, 0]
    counts = lit_ptr[lits + 1] - lit_ptr[lits]
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rules = lit_rules[np.repeat(lit_ptr[lits], counts) + offsets]
    return scanned[np.repeat(rows, counts)], rules


@lru_cache(maxsize=1024)
def _top_level_branches(pattern: str) -> tuple[str, ...] | None:
    """The top-level alternatives of a regex (``a|(b|c)|d`` -> ``a``, ``(b|c)``, ``d``), or ``None``.

    Splits on ``|`` outside groups and character classes, respecting escapes. Each piece must
    compile on its own, and there must be as many as the parser sees, else ``None``.
    """
    pieces, depth, start, i, n = [], 0, 0, 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a literal ] first in a class
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            pieces.append(pattern[start:i])
            start = i + 1
        i += 1
    pieces.append(pattern[start:])
    try:
        tree = _parser.parse(pattern, re.IGNORECASE)
        for piece in pieces:
            re.compile(piece, re.IGNORECASE)
    except re.error:
        return None
    top = tree.data
    expected = len(top[0][1][1]) if len(top) == 1 and top[0][0] is _c.BRANCH else 1
    return tuple(pieces) if len(pieces) == expected else None
