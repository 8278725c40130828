"""``bench/rule_cost.py``: how often the matcher runs each rule's regex, and how often it matches."""

from __future__ import annotations

import pytest

rc = pytest.importorskip("bench.rule_cost")

from corpusclean.tasks.stages.boilerplate import load_rule_packs  # noqa: E402

PACK = """
[[rule]]
id = "bar"
reason = "share"
pattern = 'share this'

[[rule]]
id = "prompt"
reason = "newsletter"
match = "search"
pattern = 'newsletter'
"""


def test_rule_costs_count_the_regex_runs_of_the_first_match(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(PACK, encoding="utf-8")
    rules = load_rule_packs([], [path])
    lines = ["share this", "share this now", "share this newsletter", "newsletter signup", "nothing here"]
    tried, matched = rc.rule_costs(rules, lines)
    # "bar" is a full match ending in "s": only "share this" gets its regex ("share this now" and
    # "... newsletter" end otherwise); "prompt" runs where "newsletter" is and no earlier rule matched
    assert (tried[0], matched[0]) == (1, 1)
    assert (tried[1], matched[1]) == (2, 2)
    assert [rc.rule_name(r) for r in rules] == ["bar", "prompt"]


def test_read_lines_distinct_sorted(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("  Share this \n\nnewsletter\n", encoding="utf-8")
    b.write_text("newsletter\nAlpha\n", encoding="utf-8")
    assert rc.read_lines([a, b]) == ["Alpha", "Share this", "newsletter"]


def test_main_on_given_lines(tmp_path, capsys):
    path = tmp_path / "lines.txt"
    path.write_text("Share on Facebook\nThe council met on Monday.\n", encoding="utf-8")
    assert rc.main(["--packs", "common,en", "--lines", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 distinct lines") and "en-share" in out
