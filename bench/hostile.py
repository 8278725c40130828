"""Hostile-input benchmark: the real `corpusclean run` on GB-sized hostile files, peak memory.

Each case writes one offender plus a few normal files into bench/out/hostile/<case>/raw,
runs the real CLI under ``/usr/bin/time -v`` and samples the whole process tree (flow + workers,
summed; Prefect's API server apart) every 50 ms, then checks that the run completed, that the
offender is a reject row with the expected reason and that the normal files were cleaned.

    python bench/hostile.py                    # every case (about 10 GB of gzip to expand)
    python bench/hostile.py --case txt300      # one case
    python bench/hostile.py --small            # the same cases at 1/100 of the size (seconds)

Cases: gzbomb1 (a .jsonl.gz expanding to one 5 GB line), gzbombN (5 GB of many lines),
txt300 (a 300 MB .txt with no newline), json300 (a JSON-lines file with one 300 MB record);
txt_at_limit / lines_at_limit (not in the default list): a 15 MB .txt, one line or paragraphs,
just under the default read.max_record_mb, so cleaned: what the limit lets into memory.
The files are deleted after each case (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.throughput import communicate_sampling  # noqa: E402
from corpusclean.tasks.corpus.corpus_state import read_table  # noqa: E402

MB = 1_000_000
NORMAL = {
    "ok/a.txt": "A normal article about the harbour.\n\nThe boats came back at dawn with a fine catch of fish.\n",
    "ok/b.jsonl": json.dumps({"text": "Another normal record about the village market and its stalls."}) + "\n",
}


def _gzip_members(path: Path, member: bytes, total: int) -> None:
    """A .gz of concatenated members (gzip reads them as one stream): ``total`` bytes of
    expanded data from one compressed ``member``, written in seconds."""
    chunk = gzip.compress(member, compresslevel=9)
    with open(path, "wb") as f:
        for _ in range(max(1, total // len(member))):
            f.write(chunk)


def make_case(case: str, raw: Path, scale: float) -> tuple[str, str]:
    """Write the case's offender; return (its source_path, the expected reject reason)."""
    for rel, text in NORMAL.items():
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        (raw / rel).write_text(text, encoding="utf-8")
    if case == "gzbomb1":  # {"text": "aaaa... with no newline, 5 GB
        member = b"a" * (64 * MB)
        path = raw / "bomb-one-line.jsonl.gz"
        with open(path, "wb") as f:
            f.write(gzip.compress(b'{"text": "'))
        with open(path, "ab") as f:
            chunk = gzip.compress(member, compresslevel=9)
            for _ in range(int(5000 * scale) // 64 or 1):
                f.write(chunk)
        return path.name, "decompression_limit"
    if case == "gzbombN":
        line = (json.dumps({"text": "All work and no play makes Jack a dull boy. " * 20}) + "\n").encode()
        member = line * (64 * MB // len(line))
        path = raw / "bomb-many-lines.jsonl.gz"
        _gzip_members(path, member, int(5000 * scale * MB))
        return path.name, "decompression_limit"
    if case == "txt300":
        path = raw / "huge-one-line.txt"
        word = b"lorem ipsum dolor sit amet "
        with open(path, "wb") as f:
            block = word * (MB // len(word))
            for _ in range(int(300 * scale) or 1):
                f.write(block)
        return path.name, "too_large"
    if case == "json300":
        path = raw / "huge-record.jsonl"
        with open(path, "wb") as f:
            f.write(json.dumps({"text": "A first normal record, before the huge one."}).encode() + b"\n")
            f.write(b'{"text": "')
            block = b"x" * MB
            for _ in range(int(300 * scale) or 1):
                f.write(block)
            f.write(b'"}\n')
            f.write(json.dumps({"text": "A last normal record, after the huge one."}).encode() + b"\n")
        return path.name, "too_large"
    if case in ("txt_at_limit", "lines_at_limit"):  # accepted: the largest record the default limit lets through
        path = raw / f"{case}.txt"
        sentence = b"The committee met again on Tuesday to discuss the harbour works and the budget. "
        n = int(15 * MB * min(scale * 100, 1)) // len(sentence)
        with open(path, "wb") as f:
            if case == "txt_at_limit":
                f.write(sentence * n)  # one 15 MB line
            else:
                f.write((sentence * 8 + b"\n\n") * (n // 8))  # 15 MB of paragraphs
        return path.name, ""
    raise SystemExit(f"unknown case {case}")


def run_case(case: str, scale: float, keep: bool, extra: list[str]) -> dict:
    root = HERE / "out" / "hostile" / case
    shutil.rmtree(root, ignore_errors=True)
    raw, out = root / "raw", root / "clean"
    raw.mkdir(parents=True)
    offender, reason = make_case(case, raw, scale)
    size_in = sum(p.stat().st_size for p in raw.rglob("*") if p.is_file())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = ["/usr/bin/time", "-v", str(REPO / ".venv" / "bin" / "python"), "-m", "corpusclean", "run", "--quiet",
           "--raw", str(raw), "--out", str(out), *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, stderr, peak, _ = communicate_sampling(proc)
    wall = time.perf_counter() - started
    max_one = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    errors = [line for line in stderr.splitlines() if not line.startswith("\t") and "Command being timed" not in line]
    result = {"case": case, "input_mb": round(size_in / MB, 1), "exit": proc.returncode, "seconds": round(wall, 1),
              "peak_rss_tree_mb": round(peak["rss"] / MB), "peak_anon_tree_mb": round(peak["anon"] / MB),
              "max_rss_one_process_mb": round(int(max_one.group(1)) * 1024 / MB) if max_one else None,
              "stderr": errors}
    if proc.returncode == 0:
        rejects = read_table(out, "rejects").to_pylist()
        docs = read_table(out, "documents", ["source_path"]).column("source_path").to_pylist()
        result["offender_rejects"] = sorted({r["reason"] for r in rejects if r["source_path"] == offender})
        result["offender_ok"] = reason in result["offender_rejects"] if reason else offender in docs
        result["normal_files_cleaned"] = all(rel in docs for rel in NORMAL)
        result["documents"] = len(docs)
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", action="append", choices=["gzbomb1", "gzbombN", "txt300", "json300",
                                                             "txt_at_limit", "lines_at_limit"])
    parser.add_argument("--small", action="store_true", help="1/100 of the sizes")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--set", action="append", default=[], help="config override passed to the run")
    args = parser.parse_args()
    extra = [a for s in args.set for a in ("--set", s)]
    for case in args.case or ["gzbomb1", "gzbombN", "txt300", "json300"]:
        print(json.dumps(run_case(case, 0.01 if args.small else 1.0, args.keep, extra)), flush=True)


if __name__ == "__main__":
    main()
