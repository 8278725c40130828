"""README's "Reading the corpus" snippets, run as written against a real committed corpus."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.testing.utilities import prefect_test_harness

from corpusclean.flows.clean_corpus import clean_corpus as deployed_flow
from corpusclean.tasks.corpus import corpus_state

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def readme_snippets() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Reading the corpus", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_reader_snippets_read_the_committed_corpus(tmp_path, monkeypatch):
    shutil.copytree(REPO / "data" / "raw", tmp_path / "data" / "raw")
    monkeypatch.chdir(tmp_path)
    with prefect_test_harness(server_startup_timeout=90):
        deployed_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
            raw_dir=Path("data/raw"), out_dir=Path("data/clean")
        )
    expected = corpus_state.read_table(tmp_path / "data" / "clean", "paragraphs")
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
