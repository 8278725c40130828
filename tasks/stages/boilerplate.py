"""Stage 4: flag site chrome (newsletter prompts, share bars, credits...) with a reason per line.

Two layers, rules first:

1. **Rules** recognise chrome that says what it is (below). They have priority: a line a rule
   flags keeps the rule's reason.
2. **A line classifier with context** (``tasks/stages/linefeatures.py``, ``boilerplate.classifier``)
   decides for every other line of a document whether it is article text, from evidence about
   the line (length, function-word density, punctuation, links, separators...) and its
   neighbourhood (the main content block, neighbours' scores). What it removes gets one of
   ``CLASSIFIER_REASONS`` (``navigation``, ``link_list``, ``short_outside_content``,
   ``low_text_density``, ``outside_content``).

Paragraphs are single stripped lines. Each line is tested against an ordered list of ``Rule``
(loaded from TOML rule packs, see ``tasks/stages/rules/common.toml`` for the format); the first rule
that matches gives the line its reason. Rules only look at short lines (``max_chars``), so long
prose lines skip almost every regex: that is what keeps the stage both cheap and conservative.

A rule may also flag a neighbour, which is how context-dependent chrome is caught:

* ``previous``: the unflagged line just before a match (the caption above a "Crédit : X / AFP" line);
* ``following``: the unflagged lines after a match, until prose resumes (the links under a
  "Further Reading" heading).

Nothing here is site-specific: the built-in packs describe what news sites say, in general.
"""

from __future__ import annotations

import re
import threading
import tomllib
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..config import BoilerplateConfig
from .linefeatures import (
    CLASSIFIER_REASONS,
    COMPILED_MIN_ROWS,
    BatchText,
    ContentClassifier,
    document_language_evidence,
    document_language_evidence_many,
)
from ..plumbing.records import Batch
from .rulematch import matcher_for
from ..plumbing.stage import Stage

RULES_DIR = Path(__file__).resolve().parent / "rules"

#: The reasons the built-in packs use (user packs may add their own, same spelling rules).
RULE_REASONS = (
    "newsletter",
    "notifications",
    "account",
    "comment_count",
    "photo_credit",
    "caption",
    "image_placeholder",
    "share",
    "navigation",
    "live_blog",
    "reading_time",
    "byline",
    "cookies",
    "advert",
    "source_url",
    "copyright",
    "syndication",
    "related_link",
    "template_heading",
    "media_pointer",
    "punctuation_only",
    "disclaimer",
    "donation",
)

#: Every reason the stage gives: the rule packs' and the line classifier's (``navigation`` is both).
REASONS = RULE_REASONS + tuple(r for r in CLASSIFIER_REASONS if r not in RULE_REASONS)

_REASON_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_PACK_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FLAGS = re.IGNORECASE

# Lines are matched after this folding (documented in common.toml): typographic apostrophes
# become ', exotic spaces become a plain space, emoji variation selectors and zero-width
# characters disappear. The original line is what is stored; only matching sees the folding.
_FOLD = (
    ("\u2019", "'"),
    ("\u2018", "'"),
    ("\u02bc", "'"),
    ("\u2032", "'"),
    ("\u00a0", " "),
    ("\u202f", " "),
    ("\u2009", " "),
    ("\u2007", " "),
    ("\u200a", " "),
    ("\ufe0f", ""),
    ("\u200b", ""),
    ("\u200d", ""),
    ("\u2060", ""),
    ("\ufeff", ""),
)


def fold(line: str) -> str:
    """The form of a line that rules see (apostrophes, spaces and emoji selectors normalised)."""
    if line.isascii():  # every folded character is non-ASCII
        return line
    # A few substring tests and replaces are much faster than str.translate on non-ASCII text.
    for char, replacement in _FOLD:
        if char in line:
            line = line.replace(char, replacement)
    return line


@dataclass(frozen=True)
class Context:
    """How a rule flags neighbouring lines (``previous`` or ``following`` of a matching line).

    A neighbour is taken when it is unflagged, at most ``max_chars`` long, matches ``pattern``
    (if set) and does not match ``not_pattern`` (if set). ``following`` takes up to
    ``max_lines`` lines and stops at the first line that is not taken; lines flagged with a
    reason in ``through`` are stepped over (they do not end the block).
    """

    reason: str
    max_chars: int
    max_lines: int = 1
    pattern: re.Pattern | None = None
    not_pattern: re.Pattern | None = None
    through: frozenset[str] = frozenset()

    def accepts(self, folded: str, length: int) -> bool:
        if length == 0 or length > self.max_chars:
            return False
        if self.pattern is not None and self.pattern.search(folded) is None:
            return False
        if self.not_pattern is not None and self.not_pattern.search(folded) is not None:
            return False
        return True


@dataclass(frozen=True)
class Rule:
    """One line rule: ``reason`` for lines of ``min_chars``..``max_chars`` characters matching ``pattern``.

    ``pattern`` is the rule's patterns compiled once into one (small) alternation, applied with
    ``fullmatch`` (``full=True``) or ``search`` to the folded line, case-insensitively.
    """

    reason: str
    pattern: re.Pattern
    max_chars: int | None = None
    min_chars: int = 0
    full: bool = True
    keywords: tuple[str, ...] = ()  # lower-case; when set, the line must contain one of them
    previous: Context | None = None
    following: Context | None = None
    source: str = ""  # "common.toml rule #3 (id)" - where the rule comes from, for messages

    @property
    def has_context(self) -> bool:
        """Whether the rule flags neighbouring lines (``previous`` or ``following``)."""
        return self.previous is not None or self.following is not None

    def matches(self, line: str) -> bool:
        """Whether the rule applies to a stripped line on its own: length, keywords, then the regex."""
        n = len(line)
        if n < self.min_chars or (self.max_chars is not None and n > self.max_chars):
            return False
        folded = fold(line)
        return self._test(folded, folded.lower())

    def _test(self, folded: str, lowered: str | None) -> bool:
        if self.keywords:
            if lowered is None:
                lowered = folded.lower()
            for keyword in self.keywords:
                if keyword in lowered:
                    break
            else:
                return False
        if self.full:
            return self.pattern.fullmatch(folded) is not None
        return self.pattern.search(folded) is not None


# ---------------------------------------------------------------------------------------------
# Loading rule packs


class _PackError(ValueError):
    pass


def _expand(where: str, pattern: str, variables: dict[str, str]) -> str:
    """Replace ``${NAME}`` by the variable's regex (variables defined so far, in load order)."""

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise _PackError(f"{where}: unknown variable ${{{name}}} in {pattern!r}")
        return variables[name]

    return _VAR_RE.sub(substitute, pattern)


@lru_cache(maxsize=8192)
def _compiled(pattern: str) -> re.Pattern:
    """``re.compile`` remembered beyond ``re``'s own 512 entries: every pack list a worker builds
    (one per language) compiles the same patterns again."""
    return re.compile(pattern, _FLAGS)


def _compile(where: str, pattern: str, variables: dict[str, str]) -> re.Pattern:
    try:
        return _compiled(_expand(where, pattern, variables))
    except re.error as exc:
        raise _PackError(f"{where}: bad regex {pattern!r}: {exc}") from None


def _str_list(value, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _PackError(f"{where}: {key!r} must be a non-empty string or list of non-empty strings")
    return value


def _int(value, where: str, key: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _PackError(f"{where}: {key!r} must be an integer >= {minimum}")
    return value


def _reason(value, where: str, key: str = "reason") -> str:
    if value is None:
        raise _PackError(f"{where}: missing {key!r}")
    if not isinstance(value, str) or not _REASON_RE.match(value):
        raise _PackError(f"{where}: {key!r} must be a lower-case identifier like 'newsletter', got {value!r}")
    return value


def _alternation(patterns: list[str], where: str, variables: dict[str, str]) -> re.Pattern:
    compiled = [_compile(where, p, variables) for p in patterns]  # each one alone, for a precise error
    if len(compiled) == 1:
        return compiled[0]
    return _compiled("|".join(f"(?:{c.pattern})" for c in compiled))


_RULE_KEYS = {
    "id", "reason", "patterns", "pattern", "match", "max_chars", "min_chars", "keywords", "examples",
    "previous", "following", "note",
}
_CONTEXT_KEYS = {"reason", "max_chars", "max_lines", "pattern", "not_pattern", "through", "note"}


def _context(raw, where: str, kind: str, variables: dict[str, str]) -> Context:
    where = f"{where} [{kind}]"
    if not isinstance(raw, dict):
        raise _PackError(f"{where}: must be a table")
    unknown = sorted(set(raw) - _CONTEXT_KEYS)
    if unknown:
        raise _PackError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_CONTEXT_KEYS))})")
    if "max_chars" not in raw:
        raise _PackError(f"{where}: missing 'max_chars'")
    max_lines = _int(raw.get("max_lines", 1), where, "max_lines", 1)
    if kind == "previous" and max_lines != 1:
        raise _PackError(f"{where}: 'max_lines' must be 1 for previous")
    through = raw.get("through", [])
    if not isinstance(through, list) or not all(isinstance(t, str) for t in through):
        raise _PackError(f"{where}: 'through' must be a list of reasons")
    return Context(
        reason=_reason(raw.get("reason"), where),
        max_chars=_int(raw["max_chars"], where, "max_chars", 1),
        max_lines=max_lines,
        pattern=_alternation(_str_list(raw["pattern"], where, "pattern"), where, variables) if "pattern" in raw else None,
        not_pattern=(
            _alternation(_str_list(raw["not_pattern"], where, "not_pattern"), where, variables)
            if "not_pattern" in raw
            else None
        ),
        through=frozenset(_reason(t, where, "through") for t in through),
    )


def _parse_rule(raw, file_label: str, number: int, variables: dict[str, str]) -> Rule:
    where = f"{file_label} rule #{number}"
    if isinstance(raw, dict):
        rid = raw.get("id")
        reason = raw.get("reason")
        label = rid if isinstance(rid, str) else reason if isinstance(reason, str) else None
        if label:
            where += f" ({label})"
    if not isinstance(raw, dict):
        raise _PackError(f"{where}: must be a table ([[rule]])")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise _PackError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_RULE_KEYS))})")
    reason = _reason(raw.get("reason"), where)
    if ("patterns" in raw) == ("pattern" in raw):
        raise _PackError(f"{where}: give exactly one of 'patterns' (list) or 'pattern' (string)")
    patterns = _str_list(raw.get("patterns", raw.get("pattern")), where, "patterns")
    match = raw.get("match", "full")
    if match not in ("full", "search"):
        raise _PackError(f"{where}: 'match' must be \"full\" or \"search\", got {match!r}")
    max_chars = _int(raw["max_chars"], where, "max_chars", 1) if "max_chars" in raw else None
    min_chars = _int(raw.get("min_chars", 0), where, "min_chars", 0)
    if max_chars is not None and min_chars > max_chars:
        raise _PackError(f"{where}: 'min_chars' ({min_chars}) exceeds 'max_chars' ({max_chars})")
    keywords = tuple(k.lower() for k in _str_list(raw["keywords"], where, "keywords")) if "keywords" in raw else ()
    rule = Rule(
        reason=reason,
        pattern=_alternation(patterns, where, variables),
        max_chars=max_chars,
        min_chars=min_chars,
        full=match == "full",
        keywords=keywords,
        previous=_context(raw["previous"], where, "previous", variables) if "previous" in raw else None,
        following=_context(raw["following"], where, "following", variables) if "following" in raw else None,
        source=where,
    )
    # Examples document the rule and are checked here, so that keywords, length bounds and
    # patterns cannot drift apart unnoticed (in built-in packs and in users' packs alike).
    for example in _str_list(raw["examples"], where, "examples") if "examples" in raw else ():
        if not rule.matches(example.strip()):
            raise _PackError(f"{where}: example {example!r} does not match the rule")
    return rule


def _load_file(path: Path, label: str, variables: dict[str, str]) -> list[Rule]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _PackError(f"rule file {label} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _PackError(f"{label}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise _PackError(f"rule file {label} cannot be read: {exc.strerror or exc}") from None
    unknown = sorted(set(data) - {"vars", "rule"})
    if unknown:
        raise _PackError(f"{label}: unknown top-level key {unknown[0]!r} (allowed: vars, rule)")
    raw_vars = data.get("vars", {})
    if not isinstance(raw_vars, dict):
        raise _PackError(f"{label}: [vars] must be a table")
    for name, value in raw_vars.items():
        where = f"{label} [vars] {name}"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or not isinstance(value, str) or not value:
            raise _PackError(f"{where}: a variable is NAME = \"regex\"")
        _compile(where, value, variables)  # a variable must be a valid regex on its own
        variables[name] = f"(?:{_expand(where, value, variables)})"
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise _PackError(f"{label}: rules are written [[rule]] (an array of tables)")
    return [_parse_rule(raw, label, i, variables) for i, raw in enumerate(raw_rules, 1)]


def available_packs() -> list[str]:
    return sorted(p.stem for p in RULES_DIR.glob("*.toml"))


_LOADED: dict[tuple, list[Rule]] = {}


def _file_key(path: Path) -> tuple:
    try:
        st = path.stat()
        return (str(path), st.st_mtime_ns, st.st_size)
    except OSError:
        return (str(path), None, None)


def load_rule_packs(names: Sequence[str], extra_files: Sequence[Path] = ()) -> list[Rule]:
    """``read_rule_packs``, remembered per process while the files are unchanged (a worker makes
    a stage per shard, and parsing the packs' large patterns costs a noticeable fraction of a second)."""
    if isinstance(names, str):
        names = [names]
    key = (tuple(names), tuple(_file_key(Path(p)) for p in extra_files),
           tuple(_file_key(RULES_DIR / f"{n}.toml") for n in names if isinstance(n, str) and _PACK_NAME_RE.match(n)))
    rules = _LOADED.get(key)
    if rules is None:
        rules = read_rule_packs(names, extra_files)
        if len(_LOADED) >= 64:
            _LOADED.clear()
        _LOADED[key] = rules
    return list(rules)


def read_rule_packs(names: Sequence[str], extra_files: Sequence[Path] = ()) -> list[Rule]:
    """Load built-in packs (``tasks/stages/rules/NAME.toml``) then the user's files, in that order.

    Rule order is load order (first matching rule wins). ``[vars]`` accumulate across files
    in load order, so a user file can use ``${AGENCY}`` from ``common``. Raises ``ValueError``
    with one line naming the file and rule on any problem.
    """
    if isinstance(names, str):
        names = [names]
    rules: list[Rule] = []
    variables: dict[str, str] = {}
    try:
        for name in names:
            if not isinstance(name, str) or not _PACK_NAME_RE.match(name) or not (RULES_DIR / f"{name}.toml").is_file():
                raise _PackError(f"unknown rule pack {name!r} (available: {', '.join(available_packs())})")
            rules.extend(_load_file(RULES_DIR / f"{name}.toml", f"{name}.toml", variables))
        for extra in extra_files:
            extra = Path(extra)
            rules.extend(_load_file(extra, str(extra), variables))
    except _PackError as exc:
        raise ValueError(str(exc)) from None
    return rules


# ---------------------------------------------------------------------------------------------
# Classifying


_MEMO_SIZE = 50_000  # lines per generation of BoilerplateClassifier's match_rule memo
_MEMO_MAX_CHARS = 600  # longer lines are not memoised (few rules look at them; bounded memory)


class BoilerplateClassifier:
    """Classify the lines of one document: a reason for chrome, ``None`` to keep. Pure and deterministic.

    ``rules`` run first; ``content`` (optional) then decides the lines no rule flagged.
    """

    def __init__(self, rules: list[Rule], content: ContentClassifier | None = None):
        self.rules = list(rules)
        self.content = content
        # Rules bucketed by length: for a line of length n, only rules whose max_chars >= n
        # (or unbounded) are tried, in their original order. bisect picks the bucket.
        self._limits = sorted({r.max_chars for r in self.rules if r.max_chars is not None})
        # Each entry is (min_chars, keywords, bound matcher, rule): the hot loop avoids method calls.
        def entry(r: Rule):
            return (r.min_chars, r.keywords, r.pattern.fullmatch if r.full else r.pattern.search, r)

        self._buckets: list[tuple] = [
            tuple(entry(r) for r in self.rules if r.max_chars is None or r.max_chars >= limit) for limit in self._limits
        ]
        self._buckets.append(tuple(entry(r) for r in self.rules if r.max_chars is None))
        # match_rule is a pure function of the line, and chrome repeats from page to page
        # (the same share bar, newsletter prompt, credit line...): its answers are memoised,
        # in two generations of at most _MEMO_SIZE lines each (recent answers survive a turnover).
        self._memo: dict[str, Rule | None] = {}
        self._memo_old: dict[str, Rule | None] = {}
        # Many lines at once: a literal prefilter over the whole batch, then the exact regexes
        # (tasks/stages/rulematch.py); same first matching rule as match_rule, line by line.
        self._matcher = matcher_for(self.rules)
        self._rule_or_none: list[Rule | None] = [*self.rules, None]

    def match_rules(self, lines: Sequence[str]) -> list[Rule | None]:
        """``match_rule`` of every line: distinct lines not seen lately are matched in one pass."""
        memo, old = self._memo, self._memo_old
        # the lines not remembered, by set operations (no Python step per remembered line)
        unknown = set(lines) - memo.keys()
        if unknown and old:
            recalled = unknown & old.keys()
            if recalled:
                memo.update({line: old[line] for line in recalled})
                unknown -= recalled
        fresh = list(unknown)  # each line's answer is its own: their order does not matter
        too_long: list[str] = []  # answered, not remembered (bounded memory)
        if fresh:
            lengths = np.fromiter(map(len, fresh), dtype=np.int64, count=len(fresh))
            first = self._matcher.first_matches(
                fresh, [line if line.isascii() else fold(line) for line in fresh], lengths=lengths)
            memo.update(zip(fresh, map(self._rule_or_none.__getitem__, first)))  # -1 (no rule): None
            too_long = [fresh[k] for k in np.flatnonzero(lengths > _MEMO_MAX_CHARS).tolist()]
        out = list(map(memo.__getitem__, lines))
        for line in too_long:
            del memo[line]
        if len(memo) >= _MEMO_SIZE:  # two generations: recent answers survive a turnover
            self._memo_old, self._memo = memo, {}
        return out

    def match_rule(self, line: str) -> Rule | None:
        """The first rule matching a line on its own (no context), or ``None``."""
        memo = self._memo
        try:
            return memo[line]
        except KeyError:
            pass
        if len(line) > _MEMO_MAX_CHARS:
            return self._match_rule(line)
        rule = self._memo_old[line] if line in self._memo_old else self._match_rule(line)
        if len(memo) >= _MEMO_SIZE:
            self._memo_old = memo
            self._memo = memo = {}
        memo[line] = rule
        return rule

    def _match_rule(self, line: str) -> Rule | None:
        n = len(line)
        bucket = self._buckets[bisect_left(self._limits, n)]
        if not bucket:
            return None
        folded = fold(line)
        lowered = None  # computed once, by the first rule with keywords
        for min_chars, keywords, matcher, rule in bucket:
            if n < min_chars:
                continue
            if keywords:
                if lowered is None:
                    lowered = folded.lower()
                for keyword in keywords:
                    if keyword in lowered:
                        break
                else:
                    continue
            if matcher(folded) is not None:
                return rule
        return None

    def classify(self, lines: Sequence[str]) -> list[str | None]:
        """One document's paragraphs in order -> a reason per line, or ``None`` to keep it."""
        return self.classify_batch(lines, [(0, len(lines))])

    def classify_batch(
        self, lines: Sequence[str], ranges: Sequence[tuple[int, int]],
        languages: Sequence[tuple[str | None, list[int]] | None] | None = None,
    ) -> list[str | None]:
        """The lines of many documents (``ranges``: each document's [start, end)) -> a reason per line.

        Rules are matched over all the lines at once, their context rules applied over the batch
        (``rule_reasons``), and the classifier decides all the documents at once.
        ``languages``: each document's ``linefeatures.document_language_evidence``, when known.
        """
        out = self.rule_reasons(lines, self.match_rules(lines), ranges)
        if self.content is not None:
            out = self.content.classify_many(lines, ranges, out, languages)
        return out

    def rule_reasons(
        self, lines: Sequence[str], matched: Sequence[Rule | None], ranges: Sequence[tuple[int, int]]
    ) -> list[str | None]:
        """``classify_rules`` of each document of ``ranges`` (their [start, end) in ``lines``; lines
        outside every range get ``None``), over the whole batch at once: only the lines whose rule
        has a context rule are visited, in order, each within its own document."""
        n = len(lines)
        starts = [a for a, b in ranges if b > a]
        ends = [b for a, b in ranges if b > a]
        out: list[str | None] = [r.reason if r is not None else None for r in matched]
        covered = sum(b - a for a, b in zip(starts, ends))
        ordered = all(ends[k] <= starts[k + 1] for k in range(len(starts) - 1))
        if covered != n or not ordered:  # some lines outside the documents, or documents out of order
            out = [None] * n
            for a, b in ranges:
                if b > a:
                    out[a:b] = self.classify_rules(lines[a:b], matched[a:b])
            return out
        for i in [i for i, r in enumerate(matched) if r is not None and r.has_context]:
            d = bisect_right(starts, i) - 1
            self._apply_context(lines, matched, out, i, starts[d], ends[d])
        return out

    def classify_rules(self, lines: Sequence[str], matched: Sequence[Rule | None] | None = None) -> list[str | None]:
        """The rules' reasons alone (with their context rules), ``None`` where no rule applies.

        ``matched``: ``match_rule`` of each line, when already known.
        """
        if matched is None:
            matched = self.match_rules(lines)
        out: list[str | None] = [r.reason if r is not None else None for r in matched]
        n = len(lines)
        for i, rule in enumerate(matched):
            if rule is not None and rule.has_context:
                self._apply_context(lines, matched, out, i, 0, n)
        return out

    @staticmethod
    def _apply_context(
        lines: Sequence[str], matched: Sequence[Rule | None], out: list[str | None], i: int, start: int, end: int
    ) -> None:
        """The context rules of the rule matching line ``i`` of the document [start, end)."""
        rule = matched[i]
        ctx = rule.previous
        if ctx is not None and i > start and matched[i - 1] is None and out[i - 1] is None:
            prev = lines[i - 1]
            if ctx.accepts(fold(prev), len(prev)):
                out[i - 1] = ctx.reason
        ctx = rule.following
        if ctx is not None:
            taken = 0
            j = i + 1
            while j < end and taken < ctx.max_lines:
                other = matched[j]
                if other is not None:
                    if other.reason in ctx.through or other.reason == ctx.reason:
                        j += 1
                        continue
                    break
                line = lines[j]
                if not ctx.accepts(fold(line), len(line)):
                    break
                if out[j] is None:
                    out[j] = ctx.reason
                taken += 1
                j += 1


# ---------------------------------------------------------------------------------------------
# The stage


def language_packs() -> list[str]:
    """The built-in packs named after a language (``en``, ``fr``...): chosen per document."""
    return [name for name in available_packs() if len(name) == 2]


class BoilerplateStage(Stage):
    """Fill ``is_boilerplate`` / ``boilerplate_reason`` for every paragraph of a batch.

    With ``language_packs`` on, each document gets the configured packs plus the pack of its
    language (guessed from function words, ``linefeatures.document_language``), or every
    language pack when its language cannot be told. One classifier per distinct pack list,
    built when first needed (rules load once per worker, not per batch).

    A batch is decided as a whole, not page by page: the languages of all its documents in one
    pass (``linefeatures.document_language_evidence_many`` over a ``BatchText``, the batch's lines
    as one array of code points), the rules over the lines of each pack list at once (their
    context rules with ``BoilerplateClassifier.rule_reasons``), then the line classifier over
    every document it reads at once (``ContentClassifier.classify_many``).
    """

    name = "boilerplate"

    def __init__(self, config: BoilerplateConfig):
        super().__init__()
        self.config = config
        self._content = None
        if config.classifier:
            # the threshold, unless set, is the fitted one (tasks/stages/models/content_classifier.json)
            chosen = {} if config.classifier_threshold is None else {"threshold": config.classifier_threshold}
            if not config.unrelated_lines:
                chosen["unrelated_pmax"] = 0.0  # off (drop_unrelated; the model file's bar when on)
            self._content = ContentClassifier(
                min_lines=config.classifier_min_lines, comment_threads=config.comment_threads, **chosen
            )
        self._classifiers: dict[tuple[tuple[str, ...], bool], BoilerplateClassifier] = {}
        self._language_packs = language_packs() if config.enabled and config.language_packs else []
        self.classifier: BoilerplateClassifier | None = None
        if config.enabled:
            # the pinned list is loaded at once, so that a bad pack or rule file fails early (a
            # config loaded from a file or the CLI has had every pack list checked already);
            # each language's list is loaded when a document first needs it
            self.classifier = self._classifier_for(tuple(config.rule_packs))

    def _classifier_for(self, packs: tuple[str, ...], content: bool = True) -> BoilerplateClassifier:
        """The rules of ``packs``, then the line classifier unless ``content`` is false (HTML pages
        trafilatura extracted, with ``html_classifier`` off)."""
        classifier = self._classifiers.get((packs, content))
        if classifier is None:
            rules = self._classifiers[(packs, True)].rules if (packs, True) in self._classifiers else None
            if rules is None:
                rules = load_rule_packs(list(packs), self.config.extra_rule_files)
            classifier = BoilerplateClassifier(rules, self._content if content else None)
            self._classifiers[(packs, content)] = classifier
        return classifier

    def packs_for(self, lines: Sequence[str]) -> tuple[str, ...]:
        """The rule packs applied to a document with these lines."""
        return self._packs_of(document_language_evidence(lines)[0] if self._language_packs else None)

    def _packs_of(self, lang: str | None) -> tuple[str, ...]:
        """The configured packs, plus (with ``language_packs``) the pack of the document's language
        ``lang``, or every language pack when it is ``None``."""
        pinned = tuple(self.config.rule_packs)
        if not self._language_packs:
            return pinned
        chosen = [lang] if lang in self._language_packs else self._language_packs if lang is None else []
        return pinned + tuple(p for p in chosen if p not in pinned)

    def process(self, batch: Batch) -> Batch:
        if _WARMING.locked() and threading.get_ident() != _WARMER[0]:
            # a worker's warm-up still loading the kernels: wait for it (no CPU), not race it
            with _WARMING:
                pass
        paragraphs = batch.paragraphs
        texts = paragraphs.text
        reasons: list[str | None] = [None] * len(texts)
        if self.classifier is not None and texts:
            ranges = batch.doc_ranges()
            docs = [d for d, (start, end) in enumerate(ranges) if end > start]
            # each document's language, read once for all the documents of the batch: it picks the
            # rule packs and is passed on to the classifier (``document_language_evidence``)
            text = BatchText.of(texts) if len(texts) >= COMPILED_MIN_ROWS else None
            evidence: list = [None] * len(ranges)
            if self._language_packs:
                found = document_language_evidence_many(texts, [ranges[d] for d in docs], text=text)
                for d, language in zip(docs, found):
                    evidence[d] = language
            # documents grouped by pack list: each group's rules matched over its lines at once
            groups: dict[tuple[str, ...], list[int]] = {}
            for d in docs:
                groups.setdefault(self._packs_of(evidence[d][0] if evidence[d] is not None else None), []).append(d)
            for packs, members in groups.items():
                rules = self._classifier_for(packs)
                if len(groups) == 1:
                    lines, local = texts, ranges
                else:
                    lines = [line for d in members for line in texts[ranges[d][0] : ranges[d][1]]]
                    local, offset = [], 0
                    for d in members:
                        start, end = ranges[d]
                        local.append((offset, offset + end - start))
                        offset += end - start
                decided = rules.rule_reasons(lines, rules.match_rules(lines), local)
                if len(groups) == 1:
                    reasons = decided
                else:
                    for d, (a, b) in zip(members, local):
                        start, end = ranges[d]
                        reasons[start:end] = decided[a:b]
            # then the line classifier, over every document it reads at once (HTML pages that
            # trafilatura extracted only with ``html_classifier``)
            if self._content is not None:
                html_classifier = self.config.html_classifier
                chosen = [d for d in docs if html_classifier or batch.docs[d].extractor is None]
                if chosen:
                    reasons = self._content.classify_many(
                        texts, [ranges[d] for d in chosen], reasons, [evidence[d] for d in chosen], text
                    )
        paragraphs.boilerplate_reason = reasons
        paragraphs.is_boilerplate = [r is not None for r in reasons]
        counts = self.stats.counts
        for reason, count in Counter(reasons).items():
            counts["kept" if reason is None else "boilerplate:" + reason] += count
        return batch


def warm_compiled(config: BoilerplateConfig) -> bool:
    """Load the stage's compiled kernels (numba and its LLVM, ``tasks/stages/linekernels.py`` from
    the on-disk cache) in this process, by running the stage over one batch of synthetic
    pages (twice ``COMPILED_MIN_ROWS`` lines, all read by the classifier): the kernels are
    reached with exactly the argument types of a real batch. ~0.8 CPU s the first time in a process (numba's import and the
    kernels' load; ~0.05 s afterwards), which a worker's first shard otherwise pays inside the
    stage; then the rule packs and matchers of every pack list. Returns whether it ran (``False``
    when the stage or its classifier is off)."""
    if not config.enabled or not config.classifier:
        return False
    from ..plumbing.records import Document
    from .paragraphs import ParagraphStage

    prose = (
        "The committee met on Tuesday to discuss the new budget for the library and agreed to "
        "extend its opening hours during the winter months, after a long debate in the council.",
        "Residents had asked for longer hours for years, and the librarians said they were glad "
        "that the city had finally found the money to pay for the extra staff it would need.",
    )
    lines = ["Local news", "Library hours", "Login", prose[0], "Weather", prose[1], "Opening times",
             prose[0] + " It was the first time.", "Council meeting", "Photos of the week", "Alice Martin"]
    page = "\n\n".join(lines)
    # every line of these pages is read by the classifier: twice the rows of the compiled paths
    docs = [
        Document(f"warm-{k}", f"warm-{k}.txt", "0" * 64, 0, page, "utf-8")
        for k in range(-(-2 * COMPILED_MIN_ROWS // len(lines)))
    ]
    stage = BoilerplateStage(config)
    stage(ParagraphStage()(Batch(docs)))
    # and the rules of every pack list a document may get, with their matchers (shared by the
    # process's stages: parsing the patterns' edges is ~0.1 CPU s per list, once per worker)
    for lang in (None, *stage._language_packs):
        stage._classifier_for(stage._packs_of(lang))
    return True


_WARMING = threading.Lock()  # held while ``warm_compiled_in_background`` runs
_WARMER = [0]  # the identity of its thread


def warm_compiled_in_background(config: BoilerplateConfig) -> threading.Thread:
    """``warm_compiled`` in a daemon thread (a pool worker's warm-up: it loads while the worker
    waits for its first shard). Until it is done, ``BoilerplateStage.process`` waits for it
    rather than run beside it: the stage's process-wide tables (the word index, the matchers)
    are built by one thread at a time. The lock is taken here, before the thread starts."""
    _WARMING.acquire()

    def run() -> None:
        try:
            _WARMER[0] = threading.get_ident()
            warm_compiled(config)
        except Exception:
            pass  # the first shard loads the kernels itself
        finally:
            _WARMING.release()

    thread = threading.Thread(target=run, name="corpusclean-warm-kernels", daemon=True)
    try:
        thread.start()
    except BaseException:
        _WARMING.release()  # no thread: nothing to wait for
        raise
    return thread

