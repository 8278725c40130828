"""End-to-end: the real Prefect flow (not ``.fn``) on small corpora, read back with pyarrow."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefect.task_runners import ThreadPoolTaskRunner

from corpusclean.flows.clean_corpus import clean_corpus as deployed_flow

# Threads in tests: no worker start-up per flow run (the processes runner is tested by the CLI test).
clean_corpus = deployed_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))
from corpusclean.tasks.corpus import corpus_state
from corpusclean.tasks import schema

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_api")]  # one API per session (conftest)

FR_1 = ("Le conseil municipal a voté mardi soir un budget en hausse pour la rénovation des écoles, "
        "après un débat de plus de trois heures où l’opposition a dénoncé « un calendrier irréaliste ».")
FR_2 = ("Les travaux commenceront au printemps dans quatre établissements du centre-ville, "
        "et la mairie promet que les cours ne seront pas interrompus pendant le chantier.")
EN_1 = ("The city council approved a larger budget for school repairs on Tuesday night, after a debate "
        "of more than three hours in which the opposition called the schedule unrealistic.")
EN_2 = ("Work will start in the spring at four schools in the city centre, and the town hall has promised "
        "that lessons will not be interrupted while the builders are on site.")


def read_table(out: Path, name: str) -> pa.Table:
    return corpus_state.read_table(out, name)


def rows_without_run_id(table: pa.Table) -> list[dict]:
    return table.drop_columns(["run_id"]).to_pylist()


def make_corpus(raw: Path) -> int:
    """A small mixed corpus; returns the number of input records (documents + rejected records/files)."""
    (raw / "fr").mkdir(parents=True)
    (raw / "fr" / "a.txt").write_text(
        f"Je m'abonne à la newsletter\n{FR_1}\n\n{FR_2}\n{FR_1}\nComment (0)\n", encoding="utf-8"
    )
    (raw / "fr" / "b_cp1252.txt").write_bytes(f"{FR_2}\nÇa coûte 5 € pour l’œuvre.\n".encode("cp1252"))
    (raw / "en.md").write_text(f"# Council\n\n{EN_1}\n\n{EN_2}\n\nShare on Facebook\n", encoding="utf-8")
    records = [
        {"url": "https://example.org/1", "text": EN_1 + "\n" + EN_2},
        "this is { not json",
        {"url": "https://example.org/2", "text": ""},
        {"url": "https://example.org/3", "body": "no text field"},
        {"url": "https://example.org/4", "text": FR_1.replace("trois", "quatre")},
    ]
    (raw / "web").mkdir()
    with gzip.open(raw / "web" / "feed.jsonl.gz", "wt", encoding="utf-8") as f:
        for r in records:
            f.write((json.dumps(r, ensure_ascii=False) if isinstance(r, dict) else r) + "\n")
    pq.write_table(pa.table({"text": [FR_2, None], "source": ["x", "y"]}), raw / "table.parquet")
    (raw / "empty.txt").write_bytes(b"")
    (raw / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (raw / "notes.pdf").write_bytes(b"%PDF-1.4")
    # a.txt, b, en.md, 5 jsonl records, 2 parquet rows, empty, image, pdf
    return 3 + 5 + 2 + 3


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The mixed corpus cleaned once with the default settings: (raw, out, number of input records, the
    run's report, its three tables). The tests below check it, and compare the rows of other runs of the
    same corpus (many shards, the reference chain, Dask) to its rows."""
    base = tmp_path_factory.mktemp("mixed")
    raw, out = base / "raw", base / "clean"
    n_inputs = make_corpus(raw)
    report = clean_corpus(raw_dir=raw, out_dir=out)
    tables = {name: read_table(out, name) for name in schema.TABLES}
    return raw, out, n_inputs, report, tables


def test_flow_end_to_end_on_a_mixed_corpus(mixed):
    raw, out, n_inputs, report, tables = mixed
    docs, paras, rejects = (tables[n] for n in ("documents", "paragraphs", "rejects"))
    # Every input record ends up in the documents or in the rejects.
    assert docs.num_rows + rejects.num_rows == n_inputs
    reasons = sorted(rejects.column("reason").to_pylist())
    assert reasons == sorted(["invalid_json", "empty_text", "missing_text", "text_not_string",
                              "empty_file", "binary", "unsupported_format"])
    assert report["counts"]["documents"] == docs.num_rows == 6
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".corpusclean.lock"], "scratch left behind"

    # Offsets index the repaired source text, for every paragraph.
    source = dict(zip(docs.column("doc_id").to_pylist(), docs.column("source_text").to_pylist()))
    for row in paras.to_pylist():
        assert source[row["doc_id"]][row["char_start"]:row["char_end"]] == row["text"]

    by_path = {d["source_path"]: d for d in docs.to_pylist()}
    assert by_path["fr/b_cp1252.txt"]["source_encoding"] == "cp1252"
    assert "Ça coûte 5 € pour l’œuvre." in by_path["fr/b_cp1252.txt"]["text"]
    assert by_path["fr/a.txt"]["lang"] == "fr" and by_path["en.md"]["lang"] == "en"

    # The repeated paragraph of a.txt is a duplicate of its first copy; chrome is gone.
    a = [p for p in paras.to_pylist() if p["source_path"] == "fr/a.txt"]
    first, again = [p for p in a if p["text"] == FR_1]
    assert not first["is_duplicate"] and first["dup_cluster"] == first["paragraph_id"]
    assert again["is_duplicate"] and again["duplicate_of"] == first["paragraph_id"] and again["dup_kind"] == "exact"
    assert by_path["fr/a.txt"]["text"].count(FR_1) == 1
    assert "newsletter" not in by_path["fr/a.txt"]["text"] and "Comment (0)" not in by_path["fr/a.txt"]["text"]
    assert {p["boilerplate_reason"] for p in a if p["is_boilerplate"]} >= {"newsletter", "comment_count"}

    # Across documents: FR_2 appears in a.txt (original: sorted first), b_cp1252.txt and the parquet file.
    copies = sorted((p["source_path"], p["is_duplicate"]) for p in paras.to_pylist() if p["text"] == FR_2)
    assert copies == [("fr/a.txt", False), ("fr/b_cp1252.txt", True), ("table.parquet", True)]
    # Near duplicate across files: one word changed in a 190-character sentence.
    near = [p for p in paras.to_pylist() if p["source_path"] == "web/feed.jsonl.gz" and "quatre heures" in p["text"]]
    assert near and near[0]["is_duplicate"] and near[0]["dup_kind"] == "near"
    assert near[0]["duplicate_of"] == first["paragraph_id"]

    # JSON-lines metadata is kept; record indexes are line positions.
    feed = [d for d in docs.to_pylist() if d["source_path"] == "web/feed.jsonl.gz"]
    assert [d["record_index"] for d in feed] == [0, 4]
    assert json.loads(feed[0]["metadata"]) == {"url": "https://example.org/1"}

    # Run again: nothing is cleaned twice, nothing appended twice (same rows, ids included).
    # (Into a fresh folder, the same rows again: test_flow_is_independent_of_shard_size.)
    again = clean_corpus(raw_dir=raw, out_dir=out)
    assert again["inputs"]["files"] == 0 and again["inputs"]["unchanged"] == 8
    assert rows_without_run_id(read_table(out, "documents")) == rows_without_run_id(docs)
    assert rows_without_run_id(read_table(out, "paragraphs")) == rows_without_run_id(paras)
    assert rows_without_run_id(read_table(out, "rejects")) == rows_without_run_id(rejects)


def test_a_run_is_refused_while_another_writes_to_the_same_output(tmp_path):
    from corpusclean.tasks.corpus.runs import OutputBusy, lock_output, unlock_output

    raw, out = tmp_path / "raw", tmp_path / "clean"
    make_corpus(raw)
    (out / ".staging-crashed").mkdir(parents=True)  # left by a run that was killed
    fd = lock_output(out)
    try:
        with pytest.raises(OutputBusy, match="is writing to"):
            clean_corpus(raw_dir=raw, out_dir=out)
    finally:
        unlock_output(fd)
    clean_corpus(raw_dir=raw, out_dir=out)  # the next run clears the scratch and completes
    assert not (out / ".staging-crashed").exists()
    assert read_table(out, "documents").num_rows == 6


def test_flow_is_independent_of_shard_size(mixed, tmp_path):
    """One shard (the default run) and a shard per file with one-document batches, into a fresh folder:
    the same rows (which also shows that two runs of one corpus give the same rows)."""
    raw, _, _, _, tables = mixed
    clean_corpus(raw_dir=raw, out_dir=tmp_path / "many", overrides=["run.shard_mb=0.000001", "run.batch_docs=1"])
    for name in schema.TABLES:
        assert rows_without_run_id(read_table(tmp_path / "many", name)) == rows_without_run_id(tables[name])


# --- The seeds: real raw French articles (../shared/seeds) ----------------------------------

CHROME = [
    "Je m'abonne à la newsletter « Infos »",
    "L’actualité par la rédaction de RTL dans votre boîte mail.",
    "S’abonner à la Newsletter RTL Info",
    "Ne manquez rien de l'actualité en activant les notifications sur votre navigateur",
    "Bienvenue sur RTL",
    "Rejoignez la communauté RTL, RTL2 et Fun Radio pour profiter du meilleur de la radio",
    "Je crée mon compte",
    "Comment (0)",
    "![]()",
    "Plus récent Plus ancien",
    "1 min de lecture",
    "Crédit : ANDREW CABALLERO-REYNOLDS / AFP",
    "AFP via Getty Images",
    "Le président russe Vladimir Poutine (Photo : AFP).",
    "Source : https://dantri.com.vn/the-gioi/ong-trump-va-ong-putin-tuyen-bo-dat-tien-trien-lon-sau-3-gio-dam-phan-20250815160704535.htm",
    "Seulement une partie des dépêches, que l'Agence Anadolu diffuse",
    "MERCI D'AVOIR SUIVI CE LIVE",
    "Filtrer et afficher les actualités :",
]
PROSE = [
    "Le président Poutine propose que le prochain sommet se tienne à Moscou.",
    "« La prochaine fois, ce sera à Moscou », a déclaré M. Poutine en anglais.",
    "Trump et Poutine n’ont pas répondu aux questions de la presse après leurs déclarations.",
    "Trump a évoqué la possibilité d’une seconde rencontre incluant Zelensky pour approfondir les discussions.",
    "Le sommet entre les deux dirigeants n'aura duré que trois heures, mais a été \"constructif\"",
    "“Il n’y a aucun accord tant qu’il n’y a pas d’accord”, a déclaré Trump",
]
REPEATED = "Donald Trump et Vladimir Poutine ont quitté la base militaire américaine d'Elmendorf-Richardson"


@pytest.fixture(scope="module")
def seeds_out(seeds_dir, tmp_path_factory) -> Path:
    """The seeds cleaned once, in several shards (compared to the reference chain below)."""
    raw = tmp_path_factory.mktemp("seeds") / "raw"
    shutil.copytree(seeds_dir, raw)
    out = raw.parent / "clean"
    clean_corpus(raw_dir=raw, out_dir=out, overrides=["run.shard_mb=0.01"])
    return out


@pytest.fixture(scope="module")
def seeds_run(seeds_out):
    return read_table(seeds_out, "documents").to_pylist(), read_table(seeds_out, "paragraphs").to_pylist()


def test_seeds_all_french_and_nothing_rejected(seeds_run):
    docs, _ = seeds_run
    assert len(docs) == 5
    assert [d["lang"] for d in docs] == ["fr"] * 5


def test_seeds_repeated_block_is_flagged_and_kept_once(seeds_run):
    docs, paras = seeds_run
    doc0 = next(d for d in docs if d["source_path"].startswith("000_"))
    block = [p for p in paras if p["doc_id"] == doc0["doc_id"] and not p["is_boilerplate"]]
    assert [p["is_duplicate"] for p in block[1:5]] == [False] * 4
    assert [p["is_duplicate"] for p in block[5:9]] == [True] * 4
    assert [p["duplicate_of"] for p in block[5:9]] == [p["paragraph_id"] for p in block[1:5]]
    assert doc0["text"].count(REPEATED) == 1


def test_seeds_chrome_is_flagged_with_a_reason_and_absent_from_clean_text(seeds_run):
    docs, paras = seeds_run
    clean = "\n".join(d["text"] for d in docs)
    for line in CHROME:
        matching = [p for p in paras if p["text"].startswith(line)]
        assert matching, f"seed line not found: {line!r}"
        for p in matching:
            assert p["is_boilerplate"] and p["boilerplate_reason"], f"not flagged: {line!r}"
        assert line not in clean, f"chrome left in clean text: {line!r}"
    assert "![]()" not in clean and "(Photo : " not in clean


def test_seeds_prose_and_typography_survive(seeds_run):
    docs, _ = seeds_run
    clean = "\n".join(d["text"] for d in docs)
    for sentence in PROSE:
        assert sentence in clean, f"article sentence lost: {sentence!r}"
    for mark in ("’", "“", "”", "«", "»", "\u00a0"):
        assert mark in clean


def test_seeds_source_text_is_the_raw_text(seeds_run, seeds_dir):
    docs, _ = seeds_run
    for d in docs:
        raw = (seeds_dir / d["source_path"]).read_text(encoding="utf-8")
        assert d["source_text"] == raw  # clean UTF-8 seeds: repair changes nothing
        assert re.search(r"\S", d["text"])


# --- The optimised chain gives the same rows as the unoptimised reference -------------------

def _same_rows(a: Path, b: Path) -> None:
    for name in schema.TABLES:
        assert rows_without_run_id(read_table(a, name)) == rows_without_run_id(read_table(b, name)), name


@pytest.mark.parametrize("corpus", ["mixed", "sample", "seeds"])
def test_optimised_chain_equals_the_reference_chain(corpus, tmp_path, request):
    """The reference chain (one shard) against the optimised chain's run of the same corpus: the mixed
    corpus's default run, and the sample's and the seeds' runs in several shards (run.shard_mb=0.01)."""
    if corpus == "mixed":
        raw, fast = request.getfixturevalue("mixed")[:2]
    elif corpus == "sample":
        raw, fast = request.getfixturevalue("sample_run")
    else:
        fast = request.getfixturevalue("seeds_out")
        raw = fast.parent / "raw"
    clean_corpus(raw_dir=raw, out_dir=tmp_path / "reference", overrides=["run.reference=true"])
    _same_rows(fast, tmp_path / "reference")


# --- Corpus-learned chrome: short lines repeated across pages of one site ------------------

SLOGAN = "La Gazette du Val, votre journal de proximité depuis 1952"


def test_short_lines_repeated_across_a_sites_pages_are_learned_chrome(tmp_path):
    raw = tmp_path / "raw"
    bodies = [FR_1, FR_2, EN_1, EN_2]
    for site in ("gazette", "other"):
        (raw / site).mkdir(parents=True)
    for i in range(3):  # three pages of one site share the slogan and a long syndicated paragraph
        (raw / "gazette" / f"p{i}.txt").write_text(f"{SLOGAN}\n{bodies[i]}\n{EN_2}\n", encoding="utf-8")
    (raw / "other" / "q0.txt").write_text(f"{SLOGAN}\n{FR_2.replace('quatre', 'trois')}\n", encoding="utf-8")
    clean_corpus(raw_dir=raw, out_dir=tmp_path / "out")
    paras = read_table(tmp_path / "out", "paragraphs").to_pylist()
    slogan = {p["source_path"]: p for p in paras if p["text"] == SLOGAN}
    for i in range(3):  # every copy on the site, the first one included
        row = slogan[f"gazette/p{i}.txt"]
        assert row["is_boilerplate"] and row["boilerplate_reason"] == "repeated_line"
    # once on another site: not that site's chrome; a duplicate of the gazette's line? no: chrome takes no part
    assert not slogan["other/q0.txt"]["is_boilerplate"]
    # the long paragraph repeated on the site is content: first copy kept, the others duplicates
    long_copies = sorted((p["source_path"], p["is_duplicate"]) for p in paras if p["text"] == EN_2)
    assert long_copies == [("gazette/p0.txt", False), ("gazette/p1.txt", True), ("gazette/p2.txt", True)]
    docs = {d["source_path"]: d["text"] for d in read_table(tmp_path / "out", "documents").to_pylist()}
    assert SLOGAN not in docs["gazette/p0.txt"] and SLOGAN in docs["other/q0.txt"]

    clean_corpus(raw_dir=raw, out_dir=tmp_path / "off", overrides=["dedup.repeated_line_min_docs=0"])
    off = [p for p in read_table(tmp_path / "off", "paragraphs").to_pylist() if p["text"] == SLOGAN]
    assert not any(p["is_boilerplate"] for p in off)


def test_dask_runner_gives_the_same_rows_as_the_local_runner(mixed, tmp_path):
    pytest.importorskip("prefect_dask", reason="the dask extra is not installed")
    from corpusclean.flows.clean_corpus import make_task_runner
    from corpusclean.tasks.config import load_config

    raw, local = mixed[:2]  # the local runner's rows (the same for any shard size: test above)
    # several shards, so the cluster's workers share them; the duplicate search in several partitions on
    # the cluster's workers (issue 13) must still write the rows of the local run's single partition
    overrides = ["run.shard_mb=0.001", "dedup.partition_paragraphs=5"]
    dask = make_task_runner(load_config(None, ['run.task_runner="dask"']).run)
    report = clean_corpus.with_options(task_runner=dask)(raw_dir=raw, out_dir=tmp_path / "dask", overrides=overrides)
    assert report["dedup"]["partitions"] > 1
    _same_rows(local, tmp_path / "dask")
