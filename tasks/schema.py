"""The output contract: the one place that defines what corpusclean writes.

Three Parquet datasets under the output folder, plus a run report:

* ``paragraphs/`` — one row per paragraph of every accepted document, kept or not,
  with its span in the repaired document text and the decisions taken on it.
* ``documents/`` — one row per accepted document; ``text`` is the clean text
  (kept paragraphs only, in order, joined by a blank line).
* ``rejects/`` — one row per input file or record that could not be used, with a reason.

Column names and types here are a public contract (other projects read them):
add columns freely, never rename or retype one without bumping ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"

PARAGRAPHS = pa.schema(
    [
        pa.field("paragraph_id", pa.string(), nullable=False),  # f"{doc_id}:{paragraph_index}"
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),  # relative to the raw folder, "/" separated
        pa.field("source_sha256", pa.string(), nullable=False),  # of the raw file's bytes
        pa.field("record_index", pa.int64(), nullable=False),  # line/row within the file; 0 for txt/md
        pa.field("paragraph_index", pa.int32(), nullable=False),  # position within the document
        pa.field("char_start", pa.int64(), nullable=False),  # doc_text[char_start:char_end] == text
        pa.field("char_end", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("lang", pa.string()),  # ISO 639-1, or null when unknown
        pa.field("is_boilerplate", pa.bool_(), nullable=False),
        pa.field("boilerplate_reason", pa.string()),  # e.g. "newsletter"; null when kept
        pa.field("is_duplicate", pa.bool_(), nullable=False),
        pa.field("duplicate_of", pa.string()),  # paragraph_id of the cluster's original
        pa.field("dup_cluster", pa.string()),  # paragraph_id of the cluster's original, on every member
        pa.field("dup_kind", pa.string()),  # "exact" | "near" on duplicates, null otherwise
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

DOCUMENTS = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("source_sha256", pa.string(), nullable=False),
        pa.field("record_index", pa.int64(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # clean text: kept paragraphs joined by "\n\n"
        # The decoded and repaired full text, before anything was removed: paragraphs'
        # char_start/char_end index into it, so every paragraph can be traced to its place.
        pa.field("source_text", pa.string(), nullable=False),
        pa.field("lang", pa.string()),
        pa.field("lang_prob", pa.float64()),
        pa.field("source_encoding", pa.string(), nullable=False),  # e.g. "utf-8", "cp1252", "utf-16"
        pa.field("encoding_fixes", pa.list_(pa.string()), nullable=False),  # what repair changed
        pa.field("n_replacement_chars", pa.int32(), nullable=False),  # U+FFFD left in the text
        pa.field("n_paragraphs", pa.int32(), nullable=False),
        pa.field("n_kept", pa.int32(), nullable=False),
        pa.field("n_boilerplate", pa.int32(), nullable=False),
        pa.field("n_duplicate", pa.int32(), nullable=False),
        pa.field("metadata", pa.string(), nullable=False),  # JSON object: the record's other fields
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("pipeline_version", pa.string(), nullable=False),
    ]
)

REJECTS = pa.schema(
    [
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("record_index", pa.int64()),  # null when the whole file is rejected
        pa.field("reason", pa.string(), nullable=False),  # machine-readable, see REJECT_REASONS
        pa.field("detail", pa.string(), nullable=False),  # one human-readable line
        pa.field("source_sha256", pa.string()),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)

# Every reason a file or record can be rejected for, with what it means.
REJECT_REASONS: dict[str, str] = {
    "empty_file": "the file has no bytes, or only whitespace",
    "binary": "the file looks binary (NUL bytes or mostly control characters)",
    "undecodable": "no text encoding decodes the bytes plausibly",
    "unsupported_format": "neither the file's extension nor its content is a format corpusclean reads "
    "(or a WARC record of another media type than HTML or text)",
    "unreadable": "the file could not be opened or read (permissions, corrupt archive or Parquet)",
    "invalid_json": "a JSON-lines record (or a .json file) is not valid JSON, or not a JSON object",
    "missing_text": "the record has no text field (or the Parquet/CSV file no text column)",
    "text_not_string": "the record's text field is not a string",
    "empty_text": "the record's text is empty or whitespace only after repair",
    "too_large": "the file (.txt/.md(.gz), .json, HTML) or record (JSON line, Parquet value, WARC record, CSV row) is above "
    "read.max_record_mb, or cleaning it ran out of memory",
    "decompression_limit": "a compressed file expands past read.max_decompressed_mb or read.max_decompression_ratio "
    "(a compression bomb): reading stops there, the records before it are kept",
    "symlink": "a symbolic link not followed (by default one leaving the raw folder, or to a folder; read.follow_symlinks)",
    "not_regular": "a FIFO, socket or device, not a regular file: never opened",
    "changed_during_run": "the file was rewritten while the run read it: not cleaned (txt, Parquet, JSON, HTML) or its rows "
    "are superseded by the next run (JSON lines, CSV, WARC), which reads it again",
    "no_content": "trafilatura found no main content in the HTML (or could not parse it)",
    "missing_extra": "reading HTML needs the optional html extra (pip install 'corpusclean[html]')",
    "invalid_csv": "a CSV/TSV row has more or fewer fields than the header",
}

TABLES: dict[str, pa.Schema] = {
    "documents": DOCUMENTS,
    "paragraphs": PARAGRAPHS,
    "rejects": REJECTS,
}


def describe(schema: pa.Schema) -> list[tuple[str, str, bool]]:
    """(name, type, nullable) for each column: used by ``corpusclean schema`` and the README."""
    return [(f.name, str(f.type), f.nullable) for f in schema]
