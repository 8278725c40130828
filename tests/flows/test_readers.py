"""README's "Reading the corpus" snippets, run as written against a real committed corpus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corpusclean.tasks.corpus import corpus_state

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def readme_snippets() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Reading the corpus", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_reader_snippets_read_the_committed_corpus(sample_run, monkeypatch):
    """The sample corpus as `make run` leaves it (data/raw cleaned into data/clean, by the flow: the
    session's run, tests/flows/conftest.py), read from the folder above as the README says."""
    raw, out = sample_run
    monkeypatch.chdir(out.parent.parent)  # data/clean is relative to it
    expected = corpus_state.read_table(out, "paragraphs")
    snippets = readme_snippets()
    assert len(snippets) == 2

    with_package: dict = {}
    exec(snippets[0], with_package)
    assert with_package["paragraphs"].equals(expected)
    assert with_package["documents"].column_names == ["doc_id", "text", "lang"]

    plain: dict = {}
    exec(snippets[1], plain)
    assert plain["paragraphs"].equals(expected)
    assert len(plain["df"]) == expected.num_rows
    by_lang = dict(plain["duckdb"].sql(
        "SELECT lang, count(*) FROM read_parquet($files) GROUP BY lang", params={"files": plain["files"]}).fetchall())
    assert sum(by_lang.values()) == expected.num_rows
