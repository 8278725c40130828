"""`corpusclean explain`: one document, every paragraph with its decision and reason."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from corpusclean.flows.cli import _print_explanation, app
from corpusclean.tasks.config import BoilerplateConfig, ConfigError, load_config
from corpusclean.tasks.corpus.explain import BOILERPLATE, DUPLICATE, KEEP, ExplainError, explain_file, format_row

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()

# The exact decisions below are the rules' and dedup's: the optional line classifier that may run
# after the rules (boilerplate.classifier) is switched off where the config has it.
RULES_ONLY = ["boilerplate.classifier=false"] if "classifier" in BoilerplateConfig.model_fields else []
SET_RULES_ONLY = [arg for option in RULES_ONLY for arg in ("--set", option)]


def rules_only(*overrides: str):
    return load_config(None, RULES_ONLY + list(overrides))

PROSE_1 = (
    "The harbour authority said on Monday that the ferry to the islands would run again from next week, "
    "after a two-month strike by the crews ended with a new pay agreement."
)
PROSE_2 = (
    "Passengers who bought tickets during the strike can ask for a refund at the harbour office until the end "
    "of the month, the company added in a statement."
)
PROSE_2_NEAR = PROSE_2.replace("the company added in a statement", "the company added in its statement")

ARTICLE = "\n".join(
    [
        "Home > News > Local",  # 1
        "",  # 2 (blank: not a paragraph, but it counts as a line)
        PROSE_1,  # 3
        "Subscribe to our newsletter",  # 4
        "",  # 5
        PROSE_2,  # 6
        "Share on Facebook",  # 7
        PROSE_1,  # 8: an exact copy of line 3
        PROSE_2_NEAR,  # 9: a near copy of line 6
    ]
)


@pytest.fixture(scope="module")
def config():
    return rules_only()


@pytest.fixture
def article(tmp_path) -> Path:
    path = tmp_path / "ferry.txt"
    path.write_text(ARTICLE + "\n", encoding="utf-8")
    return path


def by_line(explanation) -> dict[int, object]:
    return {row.line: row for row in explanation.rows}


def test_explain_flags_chrome_duplicates_and_keeps_prose(article, config):
    explanation = explain_file(article, config)
    rows = by_line(explanation)
    assert sorted(rows) == [1, 3, 4, 6, 7, 8, 9]  # line numbers of the repaired text, blank lines skipped
    assert rows[3].decision == KEEP and rows[3].label == "keep" and rows[3].text == PROSE_1
    assert rows[6].decision == KEEP
    assert (rows[1].decision, rows[1].reason, rows[1].label) == (BOILERPLATE, "navigation", "boilerplate:navigation")
    assert rows[4].label == "boilerplate:newsletter"
    assert rows[7].label == "boilerplate:share"
    assert (rows[8].decision, rows[8].duplicate_of, rows[8].reason) == (DUPLICATE, 3, "exact")
    assert rows[8].label == "duplicate_of:3 (exact)"
    assert rows[9].label == "duplicate_of:6 (near)"
    assert [row.paragraph_index for row in explanation.rows] == list(range(7))
    assert explanation.counts == {"keep": 2, "boilerplate": 3, "duplicate": 2}
    assert explanation.lang == "en" and explanation.encoding == "utf-8"
    header = explanation.header()
    assert "ferry.txt" in header and "language en" in header and "encoding utf-8" in header
    assert "7 paragraphs: 2 keep, 3 boilerplate, 2 duplicate" in header and "\n" not in header


def test_format_row_matches_the_documented_layout(article, config):
    rows = by_line(explain_file(article, config))
    assert format_row(rows[3]).startswith("   3  keep                      | The harbour authority")
    assert format_row(rows[4]) == "   4  boilerplate:newsletter    | Subscribe to our newsletter"
    assert format_row(rows[8]).startswith("   8  duplicate_of:3 (exact)    | The harbour")


def test_options_reach_the_stages(article):
    no_dedup = explain_file(article, rules_only("dedup.enabled=false"))
    assert no_dedup.counts["duplicate"] == 0
    no_rules = explain_file(article, rules_only("boilerplate.enabled=false"))
    assert no_rules.counts["boilerplate"] == 0
    # chrome takes no part in deduplication: the second share bar is chrome, not a duplicate
    repeated = article.parent / "repeated.txt"
    repeated.write_text(f"{PROSE_1}\nShare on Facebook\n{PROSE_2}\nShare on Facebook\n", encoding="utf-8")
    rows = by_line(explain_file(repeated, rules_only()))
    assert rows[2].label == rows[4].label == "boilerplate:share"


def test_german_and_spanish_packs_through_the_config(tmp_path):
    path = tmp_path / "bericht.txt"
    path.write_text(
        "Newsletter abonnieren\n"
        "Die Anmeldung zum Marathon ist bis Freitag möglich, teilte der Veranstalter am Montag in Hamburg mit.\n"
        "3 Min. Lesezeit\n",
        encoding="utf-8",
    )
    cfg = rules_only('boilerplate.rule_packs=["common", "de", "es"]')
    labels = [row.label for row in explain_file(path, cfg).rows]
    assert labels == ["boilerplate:newsletter", "keep", "boilerplate:reading_time"]


def test_one_record_of_a_json_lines_file(tmp_path, config):
    path = tmp_path / "feed.jsonl"
    records = [
        {"text": "First record.\nSubscribe to our newsletter"},
        "not json",
        {"text": f"{PROSE_1}\n{PROSE_1}"},
    ]
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    explanation = explain_file(path, config, record=2)
    assert [row.label for row in explanation.rows] == ["keep", "duplicate_of:1 (exact)"]
    assert "feed.jsonl record 2" in explanation.header()
    first = explain_file(path, config)  # the first document by default: here record 0
    assert [row.label for row in first.rows] == ["keep", "boilerplate:newsletter"]
    assert "feed.jsonl record 0" in first.header()
    with pytest.raises(ExplainError, match=r"record 1 is rejected: invalid_json"):
        explain_file(path, config, record=1)
    with pytest.raises(ExplainError, match=r"has no record 7 \(3 records"):
        explain_file(path, config, record=7)


def test_by_default_the_first_document_of_the_file(tmp_path, config):
    """Without --record: the first record that is a document (a WET file's record 0 is its
    warcinfo; a JSON-lines file may start with a broken line)."""
    wet = explain_file(REPO / "data" / "raw" / "web" / "crawl-sample.warc.wet.gz", config)
    assert "crawl-sample.warc.wet.gz record 1" in wet.header()
    path = tmp_path / "feed.jsonl"
    path.write_text("not json\n" + json.dumps({"text": PROSE_1}) + "\n", encoding="utf-8")
    assert "feed.jsonl record 1" in explain_file(path, config).header()
    with pytest.raises(ExplainError, match=r"record 0 is rejected: invalid_json"):
        explain_file(path, config, record=0)
    path.write_text("not json\n{}\n", encoding="utf-8")
    with pytest.raises(ExplainError, match=r"has no document to explain \(2 records"):
        explain_file(path, config)


def test_unusable_inputs_are_one_line_errors(tmp_path, article, config):
    cases = [
        (tmp_path / "absent.txt", 0, "file not found"),
        (tmp_path, 0, "is a folder"),
        (article, 1, "holds one document"),
    ]
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    cases.append((empty, 0, "empty_file"))
    odd = tmp_path / "scan.pdf"
    odd.write_bytes(b"%PDF-1.4")
    cases.append((odd, 0, "unsupported_format"))
    page = tmp_path / "page.html"  # HTML is read now: a page without content is its own one line
    page.write_text("<p>hi</p>", encoding="utf-8")
    cases.append((page, 0, "no_content: trafilatura found no main content"))
    for path, record, expected in cases:
        with pytest.raises(ExplainError) as err:
            explain_file(path, config, record)
        assert expected in str(err.value) and "\n" not in str(err.value)
    # a bad rule pack is refused when the config loads; a Config built in code reaches explain
    with pytest.raises(ConfigError, match="unknown rule pack"):
        rules_only('boilerplate.rule_packs=["common", "xx"]')
    good = rules_only()
    bad = good.model_copy(update={"boilerplate": good.boilerplate.model_copy(update={"rule_packs": ["common", "xx"]})})
    with pytest.raises(ExplainError, match="unknown rule pack"):
        explain_file(article, bad)


# ---------------------------------------------------------------------------------------------
# The command


def test_cli_prints_reasons_and_duplicates(article):
    result = runner.invoke(app, ["explain", str(article), *SET_RULES_ONLY])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "7 paragraphs: 2 keep, 3 boilerplate, 2 duplicate" in lines[0]
    assert len(lines) == 8
    assert "boilerplate:newsletter    | Subscribe to our newsletter" in result.output
    assert re.search(r"^   8  duplicate_of:3 \(exact\)    \| The harbour", result.output, re.M)
    assert PROSE_1 in result.output  # piped output: full lines, no truncation
    assert "\x1b[" not in result.output  # and no colour codes


def test_cli_only_removed_and_options(article, tmp_path):
    result = runner.invoke(app, ["explain", str(article), "--only-removed", *SET_RULES_ONLY])
    assert result.exit_code == 0, result.output
    assert " keep " not in result.output
    assert "7 paragraphs" in result.output  # the header still counts everything
    assert result.output.count("boilerplate:") == 3 and result.output.count("duplicate_of:") == 2
    cfg = tmp_path / "c.toml"
    cfg.write_text("[dedup]\nenabled = false\n", encoding="utf-8")
    result = runner.invoke(app, ["explain", str(article), "--config", str(cfg), "--set", "boilerplate.enabled=false"])
    assert result.exit_code == 0, result.output
    assert "7 keep, 0 boilerplate, 0 duplicate" in result.output


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1 and text.startswith("error:"), text
    return text


def test_cli_errors_are_one_line(tmp_path, article):
    assert "file not found" in one_line_error(runner.invoke(app, ["explain", str(tmp_path / "nope.txt")]))
    assert "unknown option" in one_line_error(runner.invoke(app, ["explain", str(article), "--set", "dedup.nope=1"]))
    bad = tmp_path / "bad.toml"
    bad.write_text("[dedup]\nthreshold = 7\n", encoding="utf-8")
    assert "dedup.threshold" in one_line_error(runner.invoke(app, ["explain", str(article), "--config", str(bad)]))
    assert "holds one document" in one_line_error(runner.invoke(app, ["explain", str(article), "--record", "2"]))


def test_help_says_duplicates_are_only_looked_for_within_the_document():
    result = runner.invoke(app, ["explain", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "WITHIN this document" in text and "corpus is not read" in text and "repeated_line" in text
    assert "explain" in runner.invoke(app, ["--help"]).output


def test_terminal_output_is_coloured_and_cut_to_the_width(article, config):
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=60, color_system="standard")
    _print_explanation(explain_file(article, config), False, console)
    output = buffer.getvalue()
    assert "\x1b[32m" in output and "\x1b[33m" in output and "\x1b[35m" in output  # green, yellow, magenta
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines()
    rows = [line for line in plain if "|" in line]
    assert len(rows) == 7 and all(len(line) <= 60 for line in rows)
    assert any(line.endswith("…") for line in rows)  # long paragraphs are cut


def test_explain_does_not_start_prefect(article):
    code = (
        "import sys; from typer.testing import CliRunner; from corpusclean.flows.cli import app; "
        f"r = CliRunner().invoke(app, ['explain', {str(article)!r}]); "
        "assert r.exit_code == 0, r.output; assert 'prefect' not in sys.modules, 'prefect imported'"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
