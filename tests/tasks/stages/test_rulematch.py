"""tasks/stages/rulematch.py: the batch engine gives the same first matching rule as trying every rule in order.

The reference is ``BoilerplateClassifier(rules)._match_rule(line)``, line by line (no memo).
"""

from __future__ import annotations

import pickle
import re
import tomllib
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusclean.tasks.stages.boilerplate import RULES_DIR, BoilerplateClassifier, Rule, available_packs, fold, load_rule_packs
from corpusclean.tasks.stages.rulematch import (
    RuleMatcher, _lower_fixes, _top_level_branches, casefold, edge_atoms, casefold_text, required_literals, rule_literals,
    symbol_checks,
)
from tests.conftest import require_shared

# ---------------------------------------------------------------------------------------------
# helpers


@lru_cache(maxsize=1)
def builtin_rules():
    return load_rule_packs(available_packs())


@lru_cache(maxsize=1)
def builtin_setup():
    rules = builtin_rules()
    return rules, RuleMatcher(rules), BoilerplateClassifier(rules)


def reference(classifier: BoilerplateClassifier, lines) -> list[int]:
    index = {id(rule): k for k, rule in enumerate(classifier.rules)}
    out = []
    for line in lines:
        rule = classifier._match_rule(line)
        out.append(-1 if rule is None else index[id(rule)])
    return out


def mismatches(matcher: RuleMatcher, classifier: BoilerplateClassifier, lines) -> list[tuple]:
    got = matcher.first_matches(lines, [fold(line) for line in lines])
    want = reference(classifier, lines)
    assert len(got) == len(lines)
    return [(line, g, w) for line, g, w in zip(lines, got, want) if g != w]


def describe(bad: list[tuple], rules) -> str:
    def name(k):
        return "none" if k < 0 else rules[k].source

    shown = "\n".join(f"  {line!r}: engine {name(g)}, reference {name(w)}" for line, g, w in bad[:8])
    return f"{len(bad)} mismatches, first ones:\n{shown}"


def builtin_examples() -> list[str]:
    out = []
    for path in sorted(RULES_DIR.glob("*.toml")):
        for rule in tomllib.loads(path.read_text(encoding="utf-8")).get("rule", []):
            examples = rule.get("examples", [])
            out.extend([examples] if isinstance(examples, str) else examples)
    return [e.strip() for e in out if e.strip()]


# ---------------------------------------------------------------------------------------------
# 1. real pages


def _page_lines(pattern_dirs, every: int) -> list[str]:
    files = []
    for directory, glob in pattern_dirs:
        files.extend(sorted(directory.glob(glob)))
    lines: dict[str, None] = {}
    for n, path in enumerate(files):
        if n % every:
            continue
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = raw.strip()
            if line:
                lines[line] = None
    return list(lines)


def test_real_pages_same_verdicts_as_reference():
    dirs = [
        (require_shared("eval", "boilerplate", "pages"), "*.raw.txt"),
        (require_shared("eval", "boilerplate-gold", "pages"), "*.raw.txt"),
        (require_shared("seeds"), "*.txt"),
    ]
    # every 3rd file, distinct lines (the verdict is a function of the line): ~120k lines
    lines = _page_lines(dirs, every=3)
    assert len(lines) > 100_000
    rules, matcher, classifier = builtin_setup()
    matched = matcher.first_matches(lines, [fold(line) for line in lines])
    assert sum(k >= 0 for k in matched) > 1000  # the rules do fire on real pages
    bad = mismatches(matcher, classifier, lines)
    assert not bad, describe(bad, rules)


def test_builtin_examples_same_verdicts():
    rules, matcher, classifier = builtin_setup()
    examples = builtin_examples()
    assert len(examples) > 100
    got = matcher.first_matches(examples, [fold(e) for e in examples])
    assert all(k >= 0 for k in got)
    bad = mismatches(matcher, classifier, examples)
    assert not bad, describe(bad, rules)


def test_match_rules_uses_engine_and_agrees():
    rules, _, classifier = builtin_setup()
    lines = builtin_examples() + ["A plain sentence of article text that no rule should flag at all."] * 2
    assert classifier.match_rules(lines) == [classifier._match_rule(line) for line in lines]


def test_match_rules_memo_across_calls_and_generations(monkeypatch):
    """Remembered, recalled from the old generation, new and too long to remember: the same answers."""
    import corpusclean.tasks.stages.boilerplate as boilerplate

    monkeypatch.setattr(boilerplate, "_MEMO_SIZE", 40)
    monkeypatch.setattr(boilerplate, "_MEMO_MAX_CHARS", 60)
    rules, _, _ = builtin_setup()
    classifier = BoilerplateClassifier(rules)
    examples = builtin_examples()
    long_line = "A long line of article text, " * 4 + "Photo : AFP"
    for start in range(0, len(examples), 25):
        lines = examples[start : start + 50] + [long_line, "Share", "Share", "Plain text here."] + examples[: start // 4]
        assert classifier.match_rules(lines) == [classifier._match_rule(line) for line in lines]
        assert long_line not in classifier._memo and long_line not in classifier._memo_old
        assert all(len(line) <= 60 for line in classifier._memo)


# ---------------------------------------------------------------------------------------------
# 2. random lines


TRICKY = ["ſ", "ı", "İ", "\u212a", "ß", "ẞ", "Σ", "ς", "σ", "©", "’", "\u00a0", "|", "/", " ", "  ", "-", ":"]


@lru_cache(maxsize=1)
def builtin_words() -> list[str]:
    words = set()
    for rule in builtin_rules():
        words.update(rule_literals(rule) or ())
        words.update(rule.keywords)
    words = sorted(words)
    return words + [w.upper() for w in words] + [w.title() for w in words]


def _perturb(text: str, data) -> str:
    """Case and fold-equivalent substitutions the regex engine treats as equal (or nearly)."""
    subs = {"s": ["ſ", "S"], "i": ["ı", "İ", "I"], "k": ["\u212a", "K"], "'": ["’"], " ": ["\u00a0", "  "],
            "ss": ["ß", "ẞ", "sſ"], "σ": ["Σ", "ς"]}
    out = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2].lower()
        if pair in subs and data.draw(st.integers(0, 3)) == 0:
            out.append(data.draw(st.sampled_from(subs[pair])))
            i += 2
            continue
        c = text[i]
        key = c.lower()
        if key in subs and data.draw(st.integers(0, 3)) == 0:
            out.append(data.draw(st.sampled_from(subs[key])))
        elif c.isalpha() and data.draw(st.integers(0, 5)) == 0:
            out.append(c.swapcase())
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _line_strategy(words: list[str]):
    token = st.one_of(
        st.sampled_from(words),
        st.sampled_from(TRICKY),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8),
        st.integers(0, 2030).map(str),
    )
    sep = st.sampled_from([" ", "", " ", "\u00a0", "|", "/", " - ", ": ", "’"])
    return st.lists(st.tuples(token, sep), min_size=1, max_size=12).map(
        lambda parts: "".join(t + s for t, s in parts).strip()
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_lines_builtin_packs(data):
    rules, matcher, classifier = builtin_setup()
    lines = data.draw(st.lists(_line_strategy(builtin_words()), min_size=1, max_size=20))
    lines = [line for line in lines if line]
    bad = mismatches(matcher, classifier, lines)
    assert not bad, describe(bad, rules)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_perturbed_examples_builtin_packs(data):
    """Rule examples (which match) with case / ſ / ı / İ / K / ẞ substitutions and extra tokens."""
    rules, matcher, classifier = builtin_setup()
    examples = builtin_examples()
    lines = []
    for _ in range(data.draw(st.integers(1, 10))):
        line = _perturb(data.draw(st.sampled_from(examples)), data)
        if data.draw(st.booleans()):
            line = line + data.draw(st.sampled_from(TRICKY)) + data.draw(st.sampled_from(builtin_words()))
        line = line.strip()
        if line:
            lines.append(line)
    bad = mismatches(matcher, classifier, lines)
    assert not bad, describe(bad, rules)


# Tiny hand-made rules, in order (index: what it exercises).
HANDMADE = r"""
[[rule]]  # 0: full, literal alternation
reason = "share"
pattern = 'share (?:this|on facebook)'

[[rule]]  # 1: search, keywords (the literal filter uses the keywords)
reason = "newsletter"
match = "search"
pattern = 'sign\s*up'
keywords = ["newsletter"]

[[rule]]  # 2: length bounds
reason = "advert"
pattern = '.*advert.*'
min_chars = 10
max_chars = 30

[[rule]]  # 3: case-sensitive part, optional part
reason = "byline"
pattern = '(?-i:AFP)(?: photos?)?'

[[rule]]  # 4: top-level alternation, one branch without a literal
reason = "comment_count"
pattern = '\d+ comments?|menu toggle|[<>|/ ]+'

[[rule]]  # 5: optional parts only around a literal
reason = "reading_time"
pattern = '(?:about )?\d+ (?:min|minutes)(?: read)?'

[[rule]]  # 6: lookahead, search, symbol literal
reason = "copyright"
match = "search"
pattern = '(?=.*rights)©\s*\d{4}'

[[rule]]  # 7: literal that a line may only contain after case folding (STRAſSE, ſ ~ s)
reason = "source_url"
match = "search"
pattern = 'strasse'

[[rule]]  # 8: overlaps rule 0 (and 7): the earlier rule wins
reason = "related_link"
match = "search"
pattern = 'share|strasse'

[[rule]]  # 9: keyword written with a dotted capital I (lower-cased: i + U+0307)
reason = "related_link"
match = "search"
pattern = 'haberler'
keywords = ["İlgili haberler"]

[[rule]]  # 10: Greek sigma, Kelvin sign, sharp s in the pattern
reason = "navigation"
pattern = 'σελίδα ok|kσς|maß'

[[rule]]  # 11: unfiltered search with min_chars, a backreference (not combinable)
reason = "punctuation_only"
match = "search"
pattern = '(\w+) \1'
min_chars = 5

[[rule]]  # 12 and 13: unfiltered, the same group name (the combined alternation cannot hold both)
reason = "navigation"
pattern = '(?P<n>\d+)x'

[[rule]]
reason = "navigation"
pattern = '(?P<n>\d+)y|(?P<m>z)\d'

[[rule]]  # 14: search tied to the line's end: the line's last character must be ")" or "."
reason = "caption"
match = "search"
pattern = '\(photo: \w+\)\s*\.?$'

[[rule]]  # 15: search tied to the line's start
reason = "related_link"
match = "search"
pattern = '^read more\b'

[[rule]]  # 16: search tied to the end but matching the empty string there: no edge
reason = "navigation"
match = "search"
min_chars = 40
pattern = '(?:zz)?$'

[[rule]]  # 17: a catch-all at the end, unfiltered, bounded
reason = "punctuation_only"
max_chars = 3
pattern = '.+'
"""

HANDMADE_WORDS = [
    "share", "this", "on", "facebook", "sign", "up", "signup", "newsletter", "advert", "AFP", "afp", "photo",
    "photos", "comments", "comment", "menu", "toggle", "about", "min", "minutes", "read", "rights", "©",
    "strasse", "STRAſSE", "Straße", "İlgili", "ilgili", "İLGİLİ", "haberler", "σελίδα", "ΣΕΛΊΔΑ", "ok", "kσς",
    "\u212aΣΣ", "maß", "MAẞ", "x", "y", "z", "1", "42", "2024", "(photo:", "(Photo:", "AFP)", "AFP).", ".", ")",
    "read", "READ", "more", "zz",
]


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "tiny.toml"
    path.write_text(HANDMADE, encoding="utf-8")
    rules = load_rule_packs([], [path])
    assert len(rules) == 18
    return rules, RuleMatcher(rules), BoilerplateClassifier(rules)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("share this", 0),
        ("SHARE ON FACEBOOK", 0),
        ("share this now", 8),  # not a full match of 0: the search rule 8
        ("Sign up to our newsletter", 1),
        ("Sign up today", -1),  # keyword missing
        ("an advert here", 2),
        ("advert", -1),  # shorter than min_chars (and longer than rule 14's max_chars)
        ("x" * 25 + "advert", -1),  # longer than max_chars; no other rule
        ("AFP", 3),
        ("AFP Photos", 3),
        ("afp", 17),  # case-sensitive part: only the catch-all (3 chars)
        ("12 comments", 4),
        ("| / |", 4),
        ("menu toggle", 4),
        ("about 5 min read", 5),
        ("5 minutes", 5),
        ("© 2024 all rights reserved", 6),
        ("© 2024", -1),  # lookahead fails
        ("Hauptstrasse 5", 7),
        ("HAUPTSTRAſSE 5", 7),  # ſ ~ s under IGNORECASE
        ("Hauptstraße 5", -1),  # ß is not ss for Python's re
        ("share strasse", 7),
        ("İlgili haberler", 9),
        ("İlgili Haberler:", 9),
        ("İLGİLİ HABERLER", -1),  # lower() gives i + U+0307 before 'lgi̇li': no keyword
        ("ΣΕΛΊΔΑ OK", 10),
        ("\u212aΣΣ", 10),  # K (Kelvin) ~ k, Σ ~ σ ~ ς
        ("MAẞ", 10),
        ("hello hello", 11),
        ("a a", 17),  # rule 11 needs 5 characters
        ("12x", 12),
        ("12y", 13),
        ("z5", 13),
        ("ab", 17),
        ("abcd", -1),
        ("Crowds on the quay (Photo: AFP)", 14),
        ("Crowds on the quay (Photo: AFP) .", 14),
        ("(Photo: AFP) crowds on the quay", -1),  # not at the end
        ("Read more now", 15),
        ("READ MORE", 15),
        ("Please read more", -1),  # not at the start
        ("q" * 40, 16),  # (?:zz)?$ matches any line: the rule has no edge
        ("q" * 39, -1),
    ],
)
def test_handmade_rules_examples(handmade, line, expected):
    rules, matcher, classifier = handmade
    want = reference(classifier, [line])
    assert want == [expected], f"reference: {line!r} -> {want} (the test's expectation is wrong)"
    assert matcher.first_matches([line], [fold(line)]) == [expected]
    # and in a batch with other lines (candidates are mapped back to the right line)
    batch = ["share this", "İlgili haberler x", line, "nothing at all here", line]
    got = matcher.first_matches(batch, [fold(b) for b in batch])
    assert got == reference(classifier, batch)


@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_random_lines_handmade_rules(handmade, data):
    rules, matcher, classifier = handmade
    lines = data.draw(st.lists(_line_strategy(HANDMADE_WORDS), min_size=1, max_size=15))
    lines = [line for line in lines if line]
    bad = mismatches(matcher, classifier, lines)
    assert not bad, describe(bad, rules)


# ---------------------------------------------------------------------------------------------
# 3. necessary literals


def _assert_necessary(pattern: str, samples) -> None:
    """Every match of ``pattern`` (IGNORECASE) in a sample contains one of the required literals."""
    literals = required_literals(pattern, re.IGNORECASE)
    assert literals is not None
    compiled = re.compile(pattern, re.IGNORECASE)
    seen = 0
    for sample in samples:
        for m in compiled.finditer(sample):
            seen += 1
            assert any(lit in casefold(m.group()) for lit in literals), (pattern, m.group(), literals)
    assert seen, "the samples should match"


@pytest.mark.parametrize(
    "pattern, samples",
    [
        ("abc(d|e)f", ["abcdf", "ABCEF", "xx abcdf yy"]),
        ("(?:foo|bar)baz", ["foobaz", "BARBAZ"]),
        ("(?:sign|log) ?in(?: now)?", ["sign in", "LOGIN now", "signin"]),
        (r"\d+ comments?", ["3 comments", "1 comment"]),
        (r"(?-i:AFP)(?: photo)?", ["AFP", "AFP photo"]),
        ("strasse", ["STRAſSE", "strasse"]),
        (r"(?:©|\(c\)) \d{4}", ["© 2024", "(C) 1999"]),
        ("(?:abc)+x?", ["abcabc", "ABCx"]),
        (r"\bread(?=ing)", ["reading"]),
    ],
)
def test_required_literals_are_necessary(pattern, samples):
    _assert_necessary(pattern, samples)


def test_required_literals_exact_expectations():
    assert required_literals("(?:foo|bar)baz") == frozenset({"foobaz", "barbaz"})
    assert required_literals("abc(d|e)f") == frozenset({"abcdf", "abcef"})
    assert required_literals("STRASSE") == frozenset({"strasse"})  # case-folded
    assert required_literals("ſtraſſe", re.IGNORECASE) == frozenset({"strasse"})  # ſ folds to s
    assert required_literals("(?-i:AFP)|dpa news", re.IGNORECASE) == frozenset({"afp", "dpa news"})
    assert required_literals(r"\d+ newsletter\d*") == frozenset({" newsletter"})
    for pattern in ("x?", "[a-z]+", "(?:abc)?", "abc|.*", "a", r"\w+\s\d+", "(?:newsletter)*", "a|bc"):
        assert required_literals(pattern) is None, pattern


@given(st.sampled_from(
    ["abc(d|e)f", "(?:foo|bar)baz", r"(?:about )?\d+ (?:min|minutes)(?: read)?", r"x(?:yz){2,3}[ab]c?d+",
     r"(?:share|partager)(?: (?:on|sur))? (?:facebook|twitter|x)", r"[©@]\s?[a-z]{2}\d", "(?-i:AFP)|dpa|reuters"]
).flatmap(lambda p: st.tuples(st.just(p), st.from_regex(re.compile(p, re.IGNORECASE), fullmatch=True))))
@settings(max_examples=100, deadline=None)
def test_required_literals_property(case):
    pattern, text = case
    literals = required_literals(pattern, re.IGNORECASE)
    if literals is not None:
        assert any(lit in casefold(text) for lit in literals), (pattern, text, literals)


@pytest.mark.parametrize("k", range(len(builtin_rules())))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_builtin_rule_literals_necessary(k, data):
    """Strings generated from each built-in rule's regex contain one of the rule's literals."""
    rule = builtin_rules()[k]
    literals = rule_literals(rule)
    if literals is None:
        return
    text = data.draw(st.from_regex(rule.pattern, fullmatch=True))
    if not rule._test(fold(text), fold(text).lower()):
        return  # e.g. fold() changed the text, or a keyword is missing
    assert any(lit in casefold(fold(text)) for lit in literals), (rule.source, text, literals)


def test_keyword_literals_survive_dotted_capital_i():
    """A keyword lower-cased to 'i̇' (i + U+0307, from 'İ') matches a line with 'İ', whose fold is 'i'."""
    rule = Rule(reason="related_link", pattern=re.compile("haberler", re.I), full=False, keywords=("i̇lgili haberler",))
    assert rule.matches("İlgili haberler")
    literals = rule_literals(rule)
    assert literals is None or any(lit in casefold(fold("İlgili haberler")) for lit in literals)


def test_casefold_agrees_with_ignorecase():
    """Characters that match each other under re.IGNORECASE have the same casefold (BMP)."""
    bad = []
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        a = chr(cp)
        others = {a.upper()[:1], a.lower()[:1], a.title()[:1], a.casefold()[:1], casefold(a)} - {a}
        if not others:
            continue
        pattern = re.compile(re.escape(a), re.IGNORECASE)
        for b in others:
            if b and pattern.fullmatch(b) and casefold(a) != casefold(b):
                bad.append((a, b))
    assert not bad, bad[:10]
    assert len(casefold("İSTANBUL ſ\u212a ẞ Σ")) == len("İSTANBUL ſ\u212a ẞ Σ")


def test_casefold_text_is_casefold():
    """``casefold_text`` (``str.lower()`` plus a few fixes) gives ``casefold`` of every code point,
    and of text where final sigma, İ, line breaks and mixed scripts meet."""
    fixes = _lower_fixes()
    bad = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000 or cp == 0x130:  # İ: casefold_text takes casefold's path
            continue
        c = chr(cp)
        low = c.lower()
        if len(low) != 1 or casefold(c) != fixes.get(low, low):
            bad.append(hex(cp))
    assert not bad, bad[:10]
    samples = [
        "ΟΔΥΣΣΕΑΣ\nΣΑΣ Σ ΑΣ. σς", "İSTANBUL İlgili\nhaberler", "ſtraße \u212a µ ϐ ϑ ϕ ϖ ϰ ϱ ϵ ᲀ ﬅ ﬆ ı",
        "Crédit : AFP\nΙΣΤΟΡΙΑ", "plain ascii\nLines", "", "\ud800 lone surrogate Σ",
    ]
    for text in samples:
        assert casefold_text(text) == casefold(text), text
    random = __import__("random").Random(7)
    pool = [chr(c) for c in range(0x20, 0x600)] + [chr(c) for c in range(0x1C80, 0x1C90)] + list("\n ΣσςİıſK")
    for _ in range(3000):
        text = "".join(random.choice(pool) for _ in range(random.randrange(0, 30)))
        assert casefold_text(text) == casefold(text), text


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("a|[|]|\\|b|(c|d)", ["a", "[|]", "\\|b", "(c|d)"]),
        ("[]|]x|y", ["[]|]x", "y"]),  # ] first in a class is a literal
        ("[^]|]x|y", ["[^]|]x", "y"]),
        (r"(?:a|b)\d|c", [r"(?:a|b)\d", "c"]),
        (r"\d+ comments?|menu toggle|[<>|/ ]+", [r"\d+ comments?", "menu toggle", "[<>|/ ]+"]),
        (r"(?P<x>a|b)c|\(|\)d", ["(?P<x>a|b)c", r"\(", r"\)d"]),
        (r"[\]|]a|b", [r"[\]|]a", "b"]),
        (r"(?<=a|bc)x|y\d", None),  # variable-width lookbehind does not compile: None
        ("abc", ["abc"]),
        ("a|b", None),  # the parser turns it into a character class: counts differ
        (r"(\w)x|\1y", None),  # a piece does not compile on its own
    ],
)
def test_top_level_branches(pattern, expected):
    got = _top_level_branches(pattern)
    assert (list(got) if got is not None else None) == expected
    if expected is not None and len(expected) > 1:
        # the pieces match exactly what the whole matches
        whole = re.compile(pattern)
        pieces = [re.compile(p) for p in expected]
        for text in ["a", "|", "]", "x", "]x", "|x", "y", "bc", "c", "d", "cd", "(", ")d", "3", "3 comments", "|a"]:
            assert (whole.fullmatch(text) is not None) == any(p.fullmatch(text) for p in pieces), (pattern, text)


# ---------------------------------------------------------------------------------------------
# 4. pickling


def test_pickled_matcher_same_verdicts(handmade):
    rules, matcher, _ = builtin_setup()
    lines = builtin_examples() + ["share this", "Nothing here", "HAUPTSTRAſSE 5", "© 2024 Reuters"]
    folded = [fold(line) for line in lines]
    clone = pickle.loads(pickle.dumps(matcher))
    assert clone.first_matches(lines, folded) == matcher.first_matches(lines, folded)
    small_rules, small, _ = handmade
    clone = pickle.loads(pickle.dumps(small))
    assert len(clone.rules) == len(small_rules)
    assert clone.first_matches(lines, folded) == small.first_matches(lines, folded)


def test_edge_rows_of_many_lines_are_each_lines_row():
    """The edge rows read off the lines' code points at once equal ``_admitted_row`` line by line
    (empty lines, NULs, surrogates and characters beyond the BMP included)."""
    from corpusclean.tasks.stages.boilerplate import load_rule_packs

    matcher = RuleMatcher(load_rule_packs(["common", "en", "fr"]))
    random = __import__("random").Random(11)
    pool = list("aAzZ09 .:/|©»«’'-\x00") + ["\u200b", "\ud800", "\U0001F600", "é", "İ", "ſ", "Σ", "\u212a"]
    lines = ["", "\x00", "\x00x", "x\x00", "Share", "© 2024"] + [
        "".join(random.choice(pool) for _ in range(random.randrange(0, 6))) for _ in range(2000)
    ]
    rows = matcher._edge_rows_of(lines)
    assert rows.tolist() == [matcher._admitted_row(f[:1], f[-1:]) for f in lines]


def test_edge_masks_are_each_branchs_atoms():
    """A character's edge mask, gathered per distinct atom (``_gather``), is the mask of the branches
    whose atoms admit it one by one (``EdgeAtoms.admits``; no atoms admits every character)."""
    _, matcher, _ = builtin_setup()
    chars = [chr(c) for c in range(0x600)] + list("\u1e9e\u2019\u201c\u00bb\u212a\ufb01\ud800\U0001F600")
    for side in (0, 1):
        cache: dict[str, int] = {}
        for char in chars:
            expected = sum(1 << j for j, atoms in enumerate(matcher._branch_atoms)
                           if atoms[side] is None or atoms[side].admits(char))
            assert matcher._edge_mask(char, side, cache) == expected, (side, char)


# ---------------------------------------------------------------------------------------------
# 5. the hyperscan literal scan, anchored literals, case folding rule by rule in every pack


def test_literal_scanner_finds_every_occurrence():
    """Every (overlapping) occurrence of every literal, with its start: as a brute-force search finds them."""
    from corpusclean.tasks.stages.rulematch import _LiteralScanner

    literals = ["ab", "b", "abab", "\nab", "b\n", "é", "\nµs", "σς\n", "\n\n", "zz"]
    scanner = _LiteralScanner([x.encode("utf-8") for x in literals])
    random = __import__("random").Random(5)
    for _ in range(300):
        text = "".join(random.choice(["a", "b", "\n", "é", "µs", "σς", "x"]) for _ in range(random.randrange(0, 40)))
        data = text.encode("utf-8")
        found = scanner.scan(data)
        got = sorted(map(tuple, found.tolist())) if found is not None else []
        want = sorted((i, s) for i, x in enumerate(literals) for s in range(len(data)) if data.startswith(x.encode("utf-8"), s))
        assert got == want, text


def test_literal_scanner_from_several_threads():
    """The thread runner cleans shards side by side with one matcher: concurrent scans each get
    their own scratch space (a shared one fails with ScratchInUseError) and the same answers."""
    from concurrent.futures import ThreadPoolExecutor

    from corpusclean.tasks.stages.rulematch import _LiteralScanner

    scanner = _LiteralScanner([b"share", b"\nmenu", b"cookie"])
    data = b"\nmenu share cookie text" * 40_000
    want = scanner.scan(data)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: scanner.scan(data), range(16)))
    for got in results:
        assert np.array_equal(got, want)


@pytest.mark.parametrize(
    "pattern, flags, last, admitted, refused",
    [
        (r"\(photo: \w+\)\s*\.?$", re.I, True, ").", "a("),  # a search tied to the end: ")" or "." last
        (r"^read more\b", re.I, False, "rR", "a("),  # tied to the start
        (r"^(?:\d+ )?comments", re.I, False, "0123456789cC", "x"),  # an optional start: both
    ],
)
def test_search_edge_atoms(pattern, flags, last, admitted, refused):
    """A search tied to an edge of the line (``^``/``$``) has that edge's atoms, as a full match does."""
    atoms = edge_atoms(pattern, flags, last, False)
    assert atoms is not None
    assert all(atoms.admits(c) for c in admitted) and not any(atoms.admits(c) for c in refused)


def test_search_rules_tied_to_an_edge_are_filtered_by_it(handmade):
    """The handmade search rules tied to the line's end (14) or start (15) get edges; the one whose
    match may be empty at the end (16), and untied searches (6), do not."""
    _, matcher, _ = handmade
    assert matcher._edges[14] is not None and matcher._edges[15] is not None
    assert matcher._edges[16] is None and matcher._edges[6] is None
    rows = matcher._edge_rows_of(["Crowds (Photo: AFP)", "Crowds (Photo: AFP) here"])
    admitted = [matcher._admitted_rules[r] for r in rows.tolist()]
    assert admitted[0][14] and not admitted[1][14]


@pytest.mark.parametrize(
    "pattern, flags, last",
    [
        (r"(?:zz)?$", 0, True),  # matches the empty string at the end of any line
        (r"\(photo\)$", 0, False),  # tied to the end, not the start
        (r"^read", 0, True),  # tied to the start, not the end
        (r"(?m)^read", 0, False),  # MULTILINE: ^ is any line's start
        (r"(?:^|: )read", 0, False),  # the anchor is inside a group: not known
        (r"^.ead", 0, False),  # any character first
        ("", 0, True),  # an empty pattern: no edge on either side
        ("", 0, False),
    ],
)
def test_search_edge_atoms_unknown(pattern, flags, last):
    assert edge_atoms(pattern, flags, last, False) is None


@pytest.mark.parametrize(
    "pattern, full, first, final",
    [
        ("share (?:this|on facebook)", True, {"share this", "share on facebook"}, {"share this", "share on facebook"}),
        (r"(?:about )?\d+ min", True, None, {" min"}),  # an optional start: no start filter
        (r"by\s+\w+", True, {"by"}, None),
        ("(?:foo|bar)+baz", True, {"foo", "bar"}, {"foobaz", "barbaz"}),
        ("^Foto: ", False, {"foto: "}, None),  # search, tied to the start by ^
        (r"photo\s*$", False, None, None),  # a nullable item at the end: no end filter
        (r"©\s*AFP$", False, None, {"afp"}),
        ("(?m)^menu", False, None, None),  # MULTILINE: ^ is any line start within the text
        ("ſtop|STOP", True, {"stop"}, {"stop"}),  # case-folded as IGNORECASE folds (ſ ~ s)
    ],
)
def test_anchored_literals(pattern, full, first, final):
    from corpusclean.tasks.stages.rulematch import anchored_literals

    got = anchored_literals(pattern, re.IGNORECASE, full, full)
    assert got == (frozenset(first) if first else None, frozenset(final) if final else None)


def _scanned_form(line: str) -> str:
    """A line as the engine scans it: folded for rules, case-folded, between "\n"s."""
    return "\n" + casefold(fold(line)) + "\n"


@pytest.mark.parametrize("k", range(len(builtin_rules())))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_builtin_rule_plans_necessary(k, data):
    """Lines generated from each built-in rule's regex that the rule matches contain one of the
    strings its plan scans for (anchored or not), once folded and put between "\n"s."""
    from corpusclean.tasks.stages.rulematch import _literal_plan

    rule = builtin_rules()[k]
    branches = _top_level_branches(rule.pattern.pattern) or (rule.pattern.pattern,)
    plan = _literal_plan(rule, branches)
    if plan is None:
        return
    text = data.draw(st.from_regex(rule.pattern, fullmatch=rule.full)).strip()
    if "\n" in text or not rule.matches(text):
        return
    assert _plan_admits(plan, text), (rule.source, text, plan)
    for check in symbol_checks(rule.pattern.pattern, rule.pattern.flags):  # tested before the regex
        assert any(x in fold(text) for x in check), (rule.source, text, check)


def test_symbol_checks():
    assert symbol_checks(r"\bphoto\s*:\s*\w+$", re.IGNORECASE) == ((":",),)
    assert symbol_checks(r"\(\s*(?:photo|©)[^()]*\)", re.IGNORECASE) == (("(",), (")",))
    assert symbol_checks(r"(?:a|b)\s*[:;]", re.IGNORECASE) == ((":", ";"),)
    assert symbol_checks(r"photo|image", re.IGNORECASE) == ()  # an alternation: no sequence
    assert symbol_checks(r"x[,;]?y", re.IGNORECASE) == ()  # optional: not necessary
    assert symbol_checks(r"ab\s+cd", re.IGNORECASE) == ()  # letters are scanned, not checked


def _plan_admits(plan, line: str) -> bool:
    """Whether some unit of a ``_literal_plan`` has each of its sets in the line as scanned: a
    cased literal (marked) in the folded line as written, any other in its case-folded form."""
    from corpusclean.tasks.stages.rulematch import _CASED

    folded, scanned = "\n" + fold(line) + "\n", _scanned_form(line)
    return any(
        all(any(lit[1:] in folded if lit.startswith(_CASED) else lit in scanned for lit in strings) for strings in unit)
        for unit in plan
    )


def test_plan_units_need_both_sets_and_case():
    """A credit line's second branch needs "/" and an agency: both sets of one unit, the agency
    acronym as written ("AP", not the "ap" of "map")."""
    from corpusclean.tasks.stages.rulematch import _CASED, _literal_plan

    rule = next(r for r in builtin_rules() if "(credit-line)" in r.source)
    plan = _literal_plan(rule, _top_level_branches(rule.pattern.pattern))
    pairs = [unit for unit in plan if len(unit) == 2]
    assert pairs and any(frozenset({"/"}) in unit for unit in pairs)
    assert any(_CASED + "AP" in strings for unit in pairs for strings in unit)
    assert _plan_admits(plan, "Jane Doe / AP") and rule.matches("Jane Doe / AP")
    assert not _plan_admits(plan, "road map / directions")  # "ap" in lower case, "/": no candidate
    assert not _plan_admits(plan, "Jane Doe AP")  # the agency without "/"


# Characters the regex engine folds together with ASCII or with each other (ſ ~ s, K ~ k, İ/ı ~ i,
# σ ~ ς ~ Σ, µ ~ μ), put into lines every way round.
_FOLD_SWAPS = [("s", "ſ"), ("S", "ſ"), ("k", "\u212a"), ("K", "\u212a"), ("i", "ı"), ("i", "İ"), ("I", "İ"),
               ("I", "ı"), ("σ", "ς"), ("σ", "Σ"), ("ς", "Σ"), ("µ", "μ"), ("μ", "µ"), ("ß", "ẞ"), ("'", "’")]


def _fold_variants(line: str) -> list[str]:
    out = [line, line.upper(), line.lower(), line.swapcase(), line.title()]
    for a, b in _FOLD_SWAPS:
        if a in line:
            out.append(line.replace(a, b))
            out.append(line.replace(a, b, 1))
            out.append(line.upper().replace(a.upper(), b))
    return [v for v in dict.fromkeys(out) if v]


def _pack_rule_lines(rules) -> list[str]:
    """Each rule's examples, their case and fold variants, and the same with text around them."""
    lines = []
    for path in sorted(RULES_DIR.glob("*.toml")):
        for raw in tomllib.loads(path.read_text(encoding="utf-8")).get("rule", []):
            examples = raw.get("examples", [])
            for example in [examples] if isinstance(examples, str) else examples:
                for variant in _fold_variants(example.strip()):
                    lines += [variant, "İ " + variant, variant + " ſ", "Σ" + variant + "ς", "µ" + variant]
    return list(dict.fromkeys(lines))


@pytest.mark.parametrize("pack", [p for p in available_packs() if p != "common"] + ["common"])
def test_every_pack_fold_edge_cases_rule_by_rule(pack):
    """Every pack (with common, as documents get it, and alone): each rule's examples with ſ, the
    Kelvin sign, Turkish ı/İ, σ/ς/Σ, µ/μ, ẞ and case swapped in, and text around them: the engine's
    first matching rule equals plain ``Rule`` matching in order, line by line."""
    lists = [["common"]] if pack == "common" else [["common", pack], [pack]]
    for names in lists:
        try:
            rules = load_rule_packs(names)
        except ValueError:
            continue  # a pack that needs common's variables
        matcher, classifier = RuleMatcher(rules), BoilerplateClassifier(rules)
        lines = _pack_rule_lines(rules)
        bad = mismatches(matcher, classifier, lines)
        assert not bad, describe(bad, rules)
        hits = sum(k >= 0 for k in matcher.first_matches(lines, [fold(line) for line in lines]))
        assert hits > len(lines) // 20  # the variants do fire rules


FOLDING = r"""
[[rule]]  # 0: full, tied to both ends, micro sign in the pattern (µ ~ μ)
reason = "reading_time"
pattern = '\d+ µs read'

[[rule]]  # 1: search tied to the start, Greek final sigma (σ ~ ς ~ Σ)
reason = "navigation"
match = "search"
pattern = '^σελίδες'

[[rule]]  # 2: search tied to the end, long s and Kelvin sign in the pattern
reason = "source_url"
match = "search"
pattern = 'ſtraſſe \u212aiel$'

[[rule]]  # 3: full, dotless i and dotted capital I
reason = "related_link"
pattern = '(?:ılgili|İlgili) haberler'
"""


@pytest.mark.parametrize(
    "line, expected",
    [
        ("12 µs read", 0), ("12 μs READ", 0), ("12 ΜS read", 0), ("x 12 µs read", -1),
        ("σελίδες 3", 1), ("ΣΕΛΊΔΕΣ", 1), ("σελίδεσ και", 1), ("σελίδες", 1), ("οι σελίδες", -1),
        ("hauptstrasse kiel", 2), ("HAUPTSTRAſSE \u212aIEL", 2), ("strasse kiel!", -1),
        ("ilgili haberler", 3), ("İLGİLİ HABERLER", 3), ("ılgılı haberler", 3), ("IlgIlI haberler", 3),
    ],
)
def test_fold_edge_cases_anchored(tmp_path, line, expected):
    path = tmp_path / "folding.toml"
    path.write_text(FOLDING, encoding="utf-8")
    rules = load_rule_packs([], [path])
    matcher, classifier = RuleMatcher(rules), BoilerplateClassifier(rules)
    want = reference(classifier, [line])
    assert want == [expected], f"reference: {line!r} -> {want} (the test's expectation is wrong)"
    batch = ["nothing", line, "ΣΕΛΊΔΕΣ", line + " tail", "İ" + line]
    assert matcher.first_matches(batch, [fold(b) for b in batch]) == reference(classifier, batch)


# ---------------------------------------------------------------------------------------------
# 5. plans kept on disk between processes


def _plan_lines() -> list[str]:
    lines = builtin_examples() + ["share this", "Nothing here", "HAUPTSTRAſSE 5", "© 2024 Reuters", ""]
    lines += [f"{e} and then a long tail of ordinary words {k}" * (1 + k % 4) for k, e in enumerate(builtin_examples())]
    return lines


def test_matcher_from_a_saved_plan_is_the_built_one(tmp_path, monkeypatch):
    from corpusclean.tasks.stages import rulematch

    monkeypatch.setattr(rulematch, "_plan_dirs", lambda: [tmp_path])
    rules = builtin_rules()
    built = RuleMatcher(rules)  # no plan yet: built, then saved
    assert len(list(tmp_path.glob("*.plan"))) == 1

    def no_build(cls, rules):
        raise AssertionError("the saved plan was not used")

    monkeypatch.setattr(rulematch._MatcherPlan, "build", classmethod(no_build))
    loaded = RuleMatcher(rules)
    assert loaded._no_literal == built._no_literal
    assert len(loaded._tiers) == len(built._tiers) > 0
    for tier_a, tier_b in zip(loaded._tiers, built._tiers):
        assert tier_a[:2] == tier_b[:2]
        for a, b in zip(tier_a[2:], tier_b[2:]):  # scanners (None or not), pointers, codes
            assert (a is None) == (b is None)
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b)
    assert np.array_equal(loaded._unit_rule, built._unit_rule) and np.array_equal(loaded._unit_pair, built._unit_pair)
    assert loaded._branch_atoms == built._branch_atoms
    lines = _plan_lines()
    folded = [fold(line) for line in lines]
    got = loaded.first_matches(lines, folded)
    assert got == built.first_matches(lines, folded)
    assert sum(k >= 0 for k in got) > 100


def test_a_plan_is_keyed_by_the_rules(tmp_path, monkeypatch, handmade):
    from corpusclean.tasks.stages import rulematch

    monkeypatch.setattr(rulematch, "_plan_dirs", lambda: [tmp_path])
    small_rules, _, _ = handmade
    RuleMatcher(small_rules)
    RuleMatcher(small_rules[:-1])  # other rules: another plan
    RuleMatcher(small_rules)  # the same rules again: the same plan
    assert len(list(tmp_path.glob("*.plan"))) == 2
    assert rulematch._plan_key(small_rules) != rulematch._plan_key(small_rules[:-1])


def test_a_damaged_plan_is_built_again_and_replaced(tmp_path, monkeypatch, handmade):
    from corpusclean.tasks.stages import rulematch

    monkeypatch.setattr(rulematch, "_plan_dirs", lambda: [tmp_path])
    small_rules, small, _ = handmade
    path = tmp_path / f"{rulematch._plan_key(small_rules)}.plan"
    path.write_bytes(b"not a plan")
    lines = _plan_lines()
    folded = [fold(line) for line in lines]
    assert RuleMatcher(small_rules).first_matches(lines, folded) == small.first_matches(lines, folded)
    assert rulematch._MatcherPlan.loads(path.read_bytes()) is not None  # replaced by a good one


def test_no_writable_cache_folder_still_builds(tmp_path, monkeypatch, handmade):
    from corpusclean.tasks.stages import rulematch

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setattr(rulematch, "_plan_dirs", lambda: [blocker / "plans", blocker / "other"])
    small_rules, small, _ = handmade
    lines = _plan_lines()
    folded = [fold(line) for line in lines]
    assert RuleMatcher(small_rules).first_matches(lines, folded) == small.first_matches(lines, folded)
    assert blocker.read_text() == "x"


def test_threads_sharing_a_new_matcher_get_its_verdicts():
    """The thread runner's shards share a matcher whose edge tables fill as characters are met:
    mask ids and rows are numbered once (a lock), so threads meeting new characters at once get
    the verdicts of a matcher used by one thread. A stress test: the window the lock closes is a
    few bytecodes wide, and it did not show in 5 runs without the lock."""
    import random
    import sys
    from concurrent.futures import ThreadPoolExecutor

    rules = builtin_rules()
    rng = random.Random(7)
    edges = list("aAzZ09 .:/|©»«’'-(▶►•") + [chr(c) for c in range(0x100, 0x600, 7)] + ["\U0001F600", "İ", "ſ"]
    base = _plan_lines()
    lines = [rng.choice(edges) + rng.choice(base) + rng.choice(edges) for _ in range(3000)] + base
    folded = [fold(line) for line in lines]
    want = RuleMatcher(rules).first_matches(lines, folded)
    shared = RuleMatcher(rules)
    chunks = [(lines[k::8], folded[k::8]) for k in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda c: shared.first_matches(*c), chunks))
    finally:
        sys.setswitchinterval(interval)
    for k, result in enumerate(got):
        assert result == want[k::8]
