"""Stage 1 (tasks/stages/read.py): discovery, decoding, and reading each supported format."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpusclean.tasks.config import ReadConfig
from corpusclean.tasks.stages.read import (
    SUPPORTED,
    DecodeError,
    SourceFile,
    codec_name,
    decode_bytes,
    discover,
    file_sha256,
    read_source,
)
from corpusclean.tasks.plumbing.records import Document, Reject, make_doc_id
from corpusclean.tasks.schema import REJECT_REASONS

FRENCH = "Le garçon était là. Ça coûte 5 €."
FRENCH_LONG = (
    "L'œuvre a été présentée à la presse mercredi. Le billet coûte 12 € et l'exposition "
    "ferme à 18 h. « C'est déjà un succès », a déclaré la directrice du musée, ravie."
)
CONFIG = ReadConfig()
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00" + b"\x00" * 64


def write(tmp_path: Path, rel: str, data: bytes | str) -> SourceFile:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return SourceFile(path, rel, len(data))


def read(src: SourceFile, config: ReadConfig = CONFIG) -> list[Document | Reject]:
    out = list(read_source(src, config))
    for item in out:
        assert isinstance(item, (Document, Reject))
        if isinstance(item, Reject):
            assert item.reason in REJECT_REASONS
            assert "\n" not in item.detail and item.detail
    return out


def only(items: list[Document | Reject]) -> Document | Reject:
    assert len(items) == 1, items
    return items[0]


# --------------------------------------------------------------------------- decode_bytes


@pytest.mark.parametrize(
    ("data", "text", "encoding"),
    [
        (FRENCH.encode("utf-8"), FRENCH, "utf-8"),
        (b"plain ascii\n", "plain ascii\n", "utf-8"),
        (b"", "", "utf-8"),
        (FRENCH.encode("utf-8-sig"), FRENCH, "utf-8-sig"),
        (FRENCH.encode("utf-16"), FRENCH, "utf-16"),
        (b"\xff\xfe" + FRENCH.encode("utf-16-le"), FRENCH, "utf-16"),
        (b"\xfe\xff" + FRENCH.encode("utf-16-be"), FRENCH, "utf-16"),
        (FRENCH.encode("utf-32"), FRENCH, "utf-32"),
        (FRENCH.encode("cp1252"), FRENCH, "cp1252"),  # detection alone says cp1250 ("lŕ")
        (FRENCH_LONG.encode("cp1252"), FRENCH_LONG, "cp1252"),
    ],
)
def test_decode_bytes_encodings(data: bytes, text: str, encoding: str) -> None:
    assert decode_bytes(data) == (text, encoding)


def test_decode_bytes_preferred_order() -> None:
    data = "Le château est à côté de la forêt, déjà.".encode("latin-1")
    assert decode_bytes(data, ["latin-1"]) == ("Le château est à côté de la forêt, déjà.", "latin_1")
    assert decode_bytes(data)[1] == "cp1252"


def test_decode_bytes_utf16_bom_with_nul_is_text() -> None:
    body = "Une ligne\x00 avec un NUL, encodée en UTF-16 : elle reste du texte."
    assert decode_bytes(body.encode("utf-16")) == (body, "utf-16")  # the reader never strips controls
    with pytest.raises(DecodeError, match="binary"):
        decode_bytes(("\x00\x01\x02" * 10 + "texte").encode("utf-16"))


def test_decode_bytes_mostly_utf8_keeps_utf8() -> None:
    # A UTF-8 article with one stray byte, or cut in the middle of a character, is still UTF-8.
    body = (FRENCH_LONG + "\n") * 5
    data = body.encode("utf-8")
    text, enc = decode_bytes(data[:-1] + b"\xc3")
    assert enc == "utf-8" and text.count("\ufffd") == 1 and text.startswith(FRENCH_LONG)
    i = data.index("é".encode())
    text, enc = decode_bytes(data[:i] + b"\xe9" + data[i + 2 :])
    assert enc == "utf-8" and text.count("\ufffd") == 1


@pytest.mark.parametrize("data", [PNG, b"\x00\x01\x02\x03" * 50, b"text\x00with\x00three\x00nuls",
                                  bytes(range(1, 32)) * 4])
def test_decode_bytes_binary(data: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        decode_bytes(data)
    assert err.value.reason == "binary"
    assert str(err.value) == err.value.detail


def test_decode_bytes_stray_nul_is_text() -> None:
    # One NUL from a scraper's glitch does not make a long text (or a whole CSV) binary: it is
    # decoded, and the repair stage removes it ("control_chars").
    body = (FRENCH_LONG + "\n") * 20
    with_nul = body[:100] + "\x00" + body[100:]
    assert decode_bytes(with_nul.encode("utf-8")) == (with_nul, "utf-8")
    with pytest.raises(DecodeError, match="NUL bytes"):
        decode_bytes(body.replace(". ", ".\x00").encode("utf-8"))  # NULs all through it: binary


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_decode_bytes_wide_text_without_bom(codec: str) -> None:
    body = (FRENCH_LONG + "\n") * 3
    assert decode_bytes(body.encode(codec)) == (body, codec)


def test_decode_bytes_undecodable() -> None:
    with pytest.raises(DecodeError) as err:
        decode_bytes(b"\xff\xfe\x00")  # UTF-16 BOM, then half a code unit: too little to be text
    assert err.value.reason in {"undecodable", "binary"}


def test_decode_bytes_keeps_mojibake_and_controls() -> None:
    line = "Le prÃ©sident a dÃ©clarÃ© \x1b[0m"
    assert decode_bytes(line.encode("utf-8")) == (line, "utf-8")


def test_codec_name() -> None:
    assert codec_name("Windows-1252") == "cp1252"
    assert codec_name("ISO-8859-1") == "latin_1"
    assert codec_name("UTF8") == "utf-8"
    assert codec_name("utf_16") == "utf-16"


# --------------------------------------------------------------------------- txt / md


@pytest.mark.parametrize(
    ("codec", "encoding"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("utf-16", "utf-16"), ("cp1252", "cp1252")],
)
def test_text_file_encodings(tmp_path: Path, codec: str, encoding: str) -> None:
    body = FRENCH_LONG + "\n\nL'été dernier, Noël à Besançon : 3 € le café, œufs compris.\n"
    src = write(tmp_path, "fr/article.txt", body.encode(codec))
    doc = only(read(src))
    assert isinstance(doc, Document)
    assert doc.text == body
    assert doc.source_encoding == encoding
    assert doc.record_index == 0 and doc.metadata == "{}"
    assert doc.source_path == "fr/article.txt"
    assert doc.source_sha256 == file_sha256(src.path)
    assert doc.doc_id == make_doc_id("fr/article.txt", doc.source_sha256, 0)


def test_markdown_file(tmp_path: Path) -> None:
    doc = only(read(write(tmp_path, "en/a.md", "# Title\n\n![](img.png)\n\nBody.\n")))
    assert isinstance(doc, Document) and doc.text.startswith("# Title")


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n", "\n \n".encode("utf-16"), b"\xef\xbb\xbf"])
def test_empty_text_file(tmp_path: Path, data: bytes) -> None:
    reject = only(read(write(tmp_path, "empty.txt", data)))
    assert isinstance(reject, Reject)
    assert reject.reason == "empty_file" and reject.record_index is None
    assert reject.source_sha256 is not None


def test_binary_text_file(tmp_path: Path) -> None:
    reject = only(read(write(tmp_path, "image.txt", PNG)))
    assert isinstance(reject, Reject) and reject.reason == "binary"
    assert reject.source_sha256 == file_sha256(tmp_path / "image.txt")


# --------------------------------------------------------------------------- jsonl


def jsonl_lines() -> list[str]:
    return [
        json.dumps({"url": "https://ex.org/1", "title": "Été", "text": "Premier article.", "n": 3}, ensure_ascii=False),
        '{"url": "https://ex.org/2", "text": "broken',  # invalid JSON
        "",  # blank line: skipped but counted
        "[1, 2, 3]",  # not an object
        json.dumps({"url": "https://ex.org/4"}),  # no text
        json.dumps({"text": 42}),
        json.dumps({"text": None}),
        json.dumps({"text": "  \n "}),
        json.dumps({"text": "Dernier article.", "tags": ["a", "b"], "z": None}),
    ]


def test_jsonl_records_and_rejects(tmp_path: Path) -> None:
    src = write(tmp_path, "feeds/a.jsonl", "\n".join(jsonl_lines()) + "\n")
    out = read(src)
    sha = file_sha256(src.path)
    got = [(type(x).__name__, x.record_index, getattr(x, "reason", None)) for x in out]
    assert got == [
        ("Document", 0, None),
        ("Reject", 1, "invalid_json"),
        ("Reject", 3, "invalid_json"),
        ("Reject", 4, "missing_text"),
        ("Reject", 5, "text_not_string"),
        ("Reject", 6, "text_not_string"),
        ("Reject", 7, "empty_text"),
        ("Document", 8, None),
    ]
    first, last = out[0], out[-1]
    assert first.text == "Premier article." and first.source_encoding == "utf-8"
    assert first.metadata == '{"n": 3, "title": "Été", "url": "https://ex.org/1"}'
    assert json.loads(last.metadata) == {"tags": ["a", "b"], "z": None}
    assert first.doc_id == make_doc_id("feeds/a.jsonl", sha, 0)
    assert all(x.source_sha256 == sha for x in out)


def test_jsonl_text_field_config(tmp_path: Path) -> None:
    src = write(tmp_path, "a.jsonl", '{"body": "Hello.", "text": "meta"}\n')
    doc = only(read(src, ReadConfig(text_field="body")))
    assert isinstance(doc, Document) and doc.text == "Hello." and doc.metadata == '{"text": "meta"}'


def test_jsonl_bad_utf8_line_rejects_that_line_only(tmp_path: Path) -> None:
    data = b'{"text": "ok"}\n{"text": "caf\xe9"}\r\n{"text": "fine"}'
    out = read(write(tmp_path, "a.jsonl", b"\xef\xbb\xbf" + data))
    assert [(type(x).__name__, x.record_index) for x in out] == [("Document", 0), ("Reject", 1), ("Document", 2)]
    assert out[1].reason == "undecodable"
    assert out[2].text == "fine"


def test_jsonl_metadata_is_always_valid_json(tmp_path: Path) -> None:
    lines = ['{"text": "a", "score": NaN, "x": [Infinity]}', '{"text": "b", "title": "bad \\ud800 surrogate"}']
    out = read(write(tmp_path, "a.jsonl", "\n".join(lines)))
    assert json.loads(out[0].metadata) == {"score": None, "x": [None]}
    out[1].metadata.encode("utf-8")  # lone surrogates stay escaped, so Parquet can store it
    assert json.loads(out[1].metadata) == {"title": "bad \ud800 surrogate"}


def test_a_huge_integer_is_valid_json_and_kept_as_its_digits(tmp_path: Path) -> None:
    """Python refuses to make an int of more than 4,300 digits: such a record was invalid_json."""
    big = "9" * 5000
    out = read(write(tmp_path, "a.jsonl", f'{{"text": "a record", "id": {big}, "n": 12}}\n'))
    assert isinstance(out[0], Document) and json.loads(out[0].metadata) == {"id": big, "n": 12}
    out = read(write(tmp_path, "b.json", f'[{{"text": "a record", "id": {big}}}]'))
    assert isinstance(out[0], Document) and json.loads(out[0].metadata) == {"id": big}


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz"])
def test_jsonl_in_utf16_and_utf32_reads_as_in_utf8(tmp_path: Path, codec: str, name: str) -> None:
    """JSON may be UTF-16 or -32 (RFC 8259), with or without a byte-order mark: each record is read
    as from the UTF-8 file, not as one undecodable line per record."""
    text = "\n".join(jsonl_lines()) + "\n"
    data = text.encode(codec)
    src = write(tmp_path, name, gzip.compress(data) if name.endswith(".gz") else data)
    utf8 = read(write(tmp_path, "utf8/" + name, gzip.compress(text.encode()) if name.endswith(".gz") else text))
    out = read(src)
    assert [(type(x).__name__, x.record_index, getattr(x, "reason", None), getattr(x, "text", None)) for x in out] == \
        [(type(x).__name__, x.record_index, getattr(x, "reason", None), getattr(x, "text", None)) for x in utf8]
    assert {x.source_encoding for x in out if isinstance(x, Document)} == {codec if codec[-2:] in ("le", "be") else codec + "-le"}


def test_jsonl_utf16_cut_in_a_character_keeps_every_record(tmp_path: Path) -> None:
    data = '{"text": "déjà lu"}\n{"text": "dernier"}\n'.encode("utf-16")[:-1]  # half of the last newline
    out = read(write(tmp_path, "a.jsonl", data))
    assert [type(x).__name__ for x in out] == ["Document", "Reject"] and out[0].text == "déjà lu"
    assert out[1].record_index == 1 and out[1].reason == "invalid_json"  # the damaged record is a reject, not lost


def test_json_file_in_utf16(tmp_path: Path) -> None:
    value = [{"text": FRENCH}, {"text": "Deuxième."}]
    for codec in ("utf-16", "utf-16-be", "utf-32-le"):
        out = read(write(tmp_path, f"{codec}.json", json.dumps(value, ensure_ascii=False).encode(codec)))
        assert [x.text for x in out] == [FRENCH, "Deuxième."]


def test_jsonl_deep_nesting_is_a_reject(tmp_path: Path) -> None:
    reject = only(read(write(tmp_path, "a.jsonl", "[" * 100_000 + "]" * 100_000)))
    assert isinstance(reject, Reject) and reject.reason == "invalid_json"


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_jsonl_empty(tmp_path: Path, data: bytes) -> None:
    reject = only(read(write(tmp_path, "a.jsonl", data)))
    assert isinstance(reject, Reject) and reject.reason == "empty_file" and reject.record_index is None


def test_jsonl_gz(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join(jsonl_lines()) + "\n").encode("utf-8"))
    src = write(tmp_path, "feeds/a.jsonl.gz", data)
    out = read(src)
    assert [x.record_index for x in out] == [0, 1, 3, 4, 5, 6, 7, 8]
    assert out[0].source_sha256 == file_sha256(src.path)  # of the compressed file's bytes
    assert out[0].doc_id == make_doc_id("feeds/a.jsonl.gz", file_sha256(src.path), 0)


def test_jsonl_gz_truncated_keeps_records_read(tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"Article numéro {i}. " + "x" * (i * 37 % 200)}) for i in range(3000)]
    data = gzip.compress("\n".join(lines).encode("utf-8"))
    out = read(write(tmp_path, "big.jsonl.gz", data[: len(data) // 2]))
    docs = [x for x in out if isinstance(x, Document)]
    assert len(docs) > 100
    assert [d.record_index for d in docs] == list(range(len(docs)))
    last = out[-1]
    assert isinstance(last, Reject) and last.reason == "unreadable" and last.record_index is None
    assert last.source_sha256 is not None


def test_jsonl_gz_not_gzip(tmp_path: Path) -> None:
    reject = only(read(write(tmp_path, "a.jsonl.gz", b'{"text": "not compressed"}\n')))
    assert isinstance(reject, Reject) and reject.reason == "unreadable"


def test_jsonl_gz_empty(tmp_path: Path) -> None:
    assert only(read(write(tmp_path, "a.jsonl.gz", b""))).reason == "empty_file"
    assert only(read(write(tmp_path, "b.jsonl.gz", gzip.compress(b"")))).reason == "empty_file"


# --------------------------------------------------------------------------- parquet


def write_parquet(tmp_path: Path, rel: str, table: pa.Table, **kwargs) -> SourceFile:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kwargs)
    return SourceFile(path, rel, path.stat().st_size)


def test_parquet_rows(tmp_path: Path) -> None:
    when = datetime(2024, 5, 1, 12, 30)
    table = pa.table(
        {
            "text": ["Bonjour à tous.", None, "  ", "Second texte."] * 600,
            "title": ["Titre", "t2", "t3", "t4"] * 600,
            "published": [when] * 2400,
        }
    )
    src = write_parquet(tmp_path, "dump.parquet", table, row_group_size=500)
    out = read(src)
    assert [x.record_index for x in out] == list(range(2400))
    sha = file_sha256(src.path)
    first = out[0]
    assert isinstance(first, Document) and first.text == "Bonjour à tous."
    assert json.loads(first.metadata) == {"published": str(when), "title": "Titre"}
    assert first.doc_id == make_doc_id("dump.parquet", sha, 0)
    assert (out[1].reason, out[2].reason) == ("text_not_string", "empty_text")
    assert out[3].text == "Second texte." and out[2399].text == "Second texte."


def test_parquet_non_string_text_column(tmp_path: Path) -> None:
    out = read(write_parquet(tmp_path, "a.parquet", pa.table({"text": [1, 2]})))
    assert [x.reason for x in out] == ["text_not_string", "text_not_string"]


def test_parquet_missing_column(tmp_path: Path) -> None:
    reject = only(read(write_parquet(tmp_path, "a.parquet", pa.table({"body": ["x", "y"]}))))
    assert isinstance(reject, Reject) and reject.reason == "missing_text" and reject.record_index is None
    assert "body" in reject.detail and reject.source_sha256


def test_parquet_no_rows(tmp_path: Path) -> None:
    table = pa.table({"text": pa.array([], pa.string())})
    assert only(read(write_parquet(tmp_path, "a.parquet", table))).reason == "empty_file"


@pytest.mark.parametrize("data", [b"PAR1 not really parquet", b"\x00" * 100, b""])
def test_parquet_corrupt(tmp_path: Path, data: bytes) -> None:
    reject = only(read(write(tmp_path, "bad.parquet", data)))
    assert isinstance(reject, Reject) and reject.reason in {"unreadable", "empty_file"}
    assert reject.reason == ("empty_file" if not data else "unreadable")


# --------------------------------------------------------------------------- other files


@pytest.mark.parametrize(("rel", "data"), [
    ("scan.pdf", b"%PDF-1.4"), ("notes", b"\x89PNG\r\n\x1a\n"), ("data.xyz", bytes(range(256)) * 4), ("a.doc", b"PK\x03\x04")
])
def test_unsupported_format(tmp_path: Path, rel: str, data: bytes) -> None:
    # an unknown extension is sniffed first (tests/tasks/test_formats.py); these look like nothing readable
    src = write(tmp_path, rel, data)
    reject = only(read(src))
    assert isinstance(reject, Reject) and reject.reason == "unsupported_format" and reject.record_index is None
    assert reject.source_sha256 == file_sha256(src.path)


def test_supported_suffixes_are_case_insensitive(tmp_path: Path) -> None:
    assert isinstance(only(read(write(tmp_path, "UPPER.TXT", "Hello."))), Document)


@pytest.mark.parametrize("suffix", SUPPORTED)
def test_unreadable_file(tmp_path: Path, suffix: str) -> None:
    src = SourceFile(tmp_path / f"gone{suffix}", f"gone{suffix}", 10)
    reject = only(read(src))
    assert isinstance(reject, Reject) and reject.reason == "unreadable" and reject.source_sha256 is None


# --------------------------------------------------------------------------- discover


def test_discover(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for rel in ["b.txt", "a/z.md", "a/b/c.jsonl", "a/page.html", ".hidden.txt", ".git/config.txt", "a/.cache/x.txt"]:
        write(raw, rel, "x" * len(rel))
    files = discover(raw)
    assert [f.rel for f in files] == ["a/b/c.jsonl", "a/page.html", "a/z.md", "b.txt"]
    for f in files:
        assert f.path.is_absolute() and f.path == (raw / f.rel).absolute()
        assert f.size == len(f.rel)
    assert discover(raw) == files


def test_discover_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "raw", "a.txt", "x")
    monkeypatch.chdir(tmp_path)
    [f] = discover(Path("raw"))
    assert f.path == tmp_path / "raw" / "a.txt" and f.rel == "a.txt"


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        discover(tmp_path / "missing")
    write(tmp_path, "file.txt", "x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        discover(tmp_path / "file.txt")


def test_discover_empty(tmp_path: Path) -> None:
    assert discover(tmp_path) == []


# --------------------------------------------------------------------------- ids


def test_ids_are_deterministic_and_depend_on_path_and_content(tmp_path: Path) -> None:
    a = tmp_path / "one" / "raw"
    b = tmp_path / "two" / "raw"
    body = "\n".join(json.dumps({"text": f"Texte {i}."}) for i in range(5))
    write(a, "feeds/x.jsonl", body)
    shutil.copytree(a, b)
    write(b, "feeds/y.jsonl", body)

    def ids(root: Path) -> dict[str, list[str]]:
        return {f.rel: [d.doc_id for d in read_source(f, CONFIG)] for f in discover(root)}

    ids_a, ids_b = ids(a), ids(b)
    assert ids_a == ids(a)
    assert ids_a["feeds/x.jsonl"] == ids_b["feeds/x.jsonl"]  # same path and bytes, anywhere
    assert not set(ids_b["feeds/x.jsonl"]) & set(ids_b["feeds/y.jsonl"])  # same bytes, other path
    assert len(set(ids_a["feeds/x.jsonl"])) == 5


def test_file_sha256(tmp_path: Path) -> None:
    src = write(tmp_path, "a.txt", b"abc")
    assert file_sha256(src.path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --------------------------------------------------------------------------- properties


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"]).flatmap(
    lambda bom: st.binary(max_size=300).map(lambda rest: bom + rest)
))
def test_decode_bytes_total(data: bytes) -> None:
    try:
        text, encoding = decode_bytes(data)
    except DecodeError as err:
        assert err.reason in {"binary", "undecodable"}
    else:
        assert isinstance(text, str) and isinstance(encoding, str)


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=200)


@settings(max_examples=200, deadline=None)
@given(_TEXT)
def test_decode_bytes_utf8_round_trip(text: str) -> None:
    expected = "utf-8-sig" if text.startswith("\ufeff") else "utf-8"
    assert decode_bytes(text.encode("utf-8")) == (text.removeprefix("\ufeff"), expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), suffix=st.sampled_from(SUPPORTED + (".html",)))
def test_read_source_never_raises(tmp_path: Path, data: bytes, suffix: str) -> None:
    src = write(tmp_path, f"f{suffix}", data)
    out = read(src)
    assert out
    if suffix in (".txt", ".md", ".html"):
        assert len(out) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_TEXT, st.dictionaries(st.sampled_from(["text", "url", "n"]), st.none() | st.integers() | _TEXT).map(json.dumps)), max_size=12))
def test_jsonl_one_output_per_non_blank_line(tmp_path: Path, lines: list[str]) -> None:
    lines = [line.replace("\n", " ").replace("\r", " ") for line in lines]
    src = write(tmp_path, "f.jsonl", "\n".join(lines))
    out = read(src)
    expected = [i for i, line in enumerate(lines) if line.encode("utf-8").strip()]  # JSON whitespace only
    if not expected:
        assert [x.reason for x in out] == ["empty_file"]
    else:
        assert [x.record_index for x in out] == expected


# --------------------------------------------------------------------------- shipped sample


def test_sample_corpus_reads_as_documented() -> None:
    raw = Path(__file__).resolve().parents[3] / "data" / "raw"
    files = discover(raw)
    assert sum(f.size for f in files) < 60_000
    out = [item for f in files for item in read_source(f, CONFIG)]
    docs = [x for x in out if isinstance(x, Document)]
    rejects = [(x.source_path, x.record_index, x.reason) for x in out if isinstance(x, Reject)]
    assert 12 <= len(docs) <= 16
    web = [(d.source_path, d.record_index, d.extractor is not None) for d in docs if d.source_path.startswith("web/")]
    assert web == [("web/crawl-sample.warc.wet.gz", 1, False), ("web/crawl-sample.warc.wet.gz", 2, False),
                   ("web/crawl-sample.warc.wet.gz", 3, False), ("web/rooftop-garden.html", 0, True)]
    assert rejects == [("feeds/2024-03-week11.jsonl", 1, "invalid_json"), ("feeds/2024-03-week11.jsonl", 2, "empty_text")]
    encodings = {d.source_path: d.source_encoding for d in docs}
    assert encodings.pop("fr/2024-03-13_tramway-t10-saint-fons_cp1252.txt") == "cp1252"
    assert set(encodings.values()) == {"utf-8"}
