"""The shard function (tasks/corpus/shard.py): batching and progress inside one shard."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa

from corpusclean.tasks.config import Config, RunConfig
from corpusclean.tasks.corpus.shard import clean_shard, iter_batches
from corpusclean.tasks.plumbing.stage import StageStats
from corpusclean.tasks.stages.read import discover

WORDS = ("river council budget school repair debate market station library museum bridge winter report "
         "street committee lesson builder spring city centre").split()
MENU = ["Home", "News", "Sport", "Weather", "Contact us", "Share on Facebook", "Subscribe to our newsletter"]


def page(rnd: random.Random, n: int) -> str:
    prose = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(25, 60))).capitalize() + "." for _ in range(6)]
    return "\n".join(MENU + prose + MENU[::-1]) + f"\nPage {n}"


def write_pages(raw: Path, files: int, pages: int) -> None:
    rnd = random.Random(3)
    raw.mkdir()
    for f in range(files):
        with open(raw / f"pages-{f}.jsonl", "w", encoding="utf-8") as out:
            for n in range(pages):
                out.write(json.dumps({"text": page(rnd, n), "url": f"https://site{n % 5}.example/{f}/{n}"}) + "\n")


def staged(tmp: Path, raw: Path, config: Config, name: str) -> tuple[pa.Table, pa.Table]:
    result = clean_shard(0, discover(raw), config, tmp / name)
    read = lambda p: pa.ipc.open_file(str(p)).read_all()  # noqa: E731
    return read(result.paragraphs_path), read(result.documents_path)


def test_staged_rows_do_not_depend_on_the_batch_size(tmp_path):
    raw = tmp_path / "raw"
    write_pages(raw, files=2, pages=30)
    big = staged(tmp_path, raw, Config(), "big")
    for i, run in enumerate((RunConfig(batch_mb=0.005), RunConfig(batch_docs=7))):
        small = staged(tmp_path, raw, Config(run=run), f"small{i}")
        assert small[0].num_rows == big[0].num_rows > 0
        assert small[0].equals(big[0]) and small[1].equals(big[1])


def test_progress_moves_inside_one_big_file(tmp_path):
    raw = tmp_path / "raw"
    write_pages(raw, files=1, pages=200)
    size = (raw / "pages-0.jsonl").stat().st_size
    position = [0]
    seen = []
    for batch in iter_batches(discover(raw), Config(run=RunConfig(batch_docs=20)), StageStats("read"), None, position):
        seen.append(position[0])
    assert len(seen) == 10
    assert seen == sorted(seen) and 0 < seen[0] < seen[4] < size  # not all of the file at its first batch
    assert position[0] == size


def test_a_file_too_big_for_one_shard_that_leaves_workers_idle_is_one_warning():
    from pathlib import Path

    from corpusclean.tasks.corpus.shard import idle_workers_warning, plan_shards
    from corpusclean.tasks.stages.read import SourceFile

    def files(*mb):
        return [SourceFile(Path(f"/raw/f{k}.jsonl"), f"f{k}.jsonl", int(m * 1e6)) for k, m in enumerate(mb)]

    one_big = plan_shards(files(40), 16)
    assert idle_workers_warning(one_big, 16, 2, "processes") == (
        "1 shard for 2 workers: f0.jsonl (40.0 MB) is cleaned by one core, as a file is never split; "
        "split files larger than run.shard_mb (16 MB) to use every worker")
    assert "f1.jsonl (30.0 MB)" in idle_workers_warning(plan_shards(files(20, 30), 16), 16, 4, "dask")
    assert idle_workers_warning(plan_shards(files(20, 30), 16), 16, 2, "processes") is None  # both workers busy
    assert idle_workers_warning(one_big, 16, 2, "threads") is None  # one core by choice
    assert idle_workers_warning(one_big, 16, 1, "processes") is None
    assert idle_workers_warning(plan_shards(files(1, 2), 16), 16, 2, "processes") is None  # small: nothing to split
