"""Stage 2: repair encoding damage and normalise the text's plumbing.

What it changes, in order:
1. line endings (CRLF, CR, form feed, U+2028/2029, NEL...) become "\\n";
2. lines that show a sign of damage (mojibake, C1 controls, HTML entities, ligatures,
   surrogates) go through ftfy; clean lines are left alone, which keeps this stage fast
   (ftfy runs ~1.5 MB/s; the pre-check is one regex scan);
3. NUL and other control characters (except tab and newline) and stray BOMs are removed;
4. the text is put in Unicode NFC form.

Correct typography is never touched: ftfy runs with ``uncurl_quotes=False`` so ’ “ ” « »
and non-breaking spaces come out as they went in. U+FFFD cannot be repaired (the bytes
are gone); it is counted per document instead.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right

import ftfy
from ftfy import TextFixerConfig

from ..plumbing.records import Batch, Document, Reject
from ..plumbing.stage import Stage

_FTFY_CONFIG = TextFixerConfig(uncurl_quotes=False, explain=True)

_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # a class scans fast

# Control characters that never belong in text: C0 except \t and \n, DEL, C1, BOM, and
# the non-characters U+FFFE/U+FFFF, and lone surrogates (unstorable; ftfy pairs valid ones first). (C1 controls are also a mojibake sign, so ftfy sees them first.)
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ufeff\ufffe\uffff\ud800-\udfff]")


def _mojibake_pair() -> re.Pattern[str]:
    # UTF-8 read as cp1252/latin-1 turns a lead byte (0xC2-0xF4 -> Â..ô) into a letter
    # followed by what a continuation byte (0x80-0xBF) decodes to. Such pairs almost never
    # occur in real text, so they are a cheap, precise trigger for ftfy.
    continuation = "".join(
        bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xC0)
    )
    return re.compile(f"[\u00c2-\u00f4][{re.escape(continuation)}\x80-\x9f]")


# The signs of damage, as separate scans: one alternation of all of them is ~8x slower
# (the regex engine tries every branch at every position).
_MOJIBAKE_PAIR = _mojibake_pair()
# C1 controls (cp1252 bytes decoded as latin-1), Latin ligatures, lone surrogates, terminal escapes.
_RARE_SIGNS = re.compile("[\x80-\x9f\ufb00-\ufb06\ud800-\udfff\x1b]")
_NEWLINE = re.compile("\n")
_HTML_ENTITY = re.compile("&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


def looks_damaged(text: str) -> bool:
    """The cheap pre-check that decides whether ftfy runs at all."""
    if text.isascii():  # O(1): of the signs, only ESC and entities are ASCII
        return "\x1b" in text or ("&" in text and _HTML_ENTITY.search(text) is not None)
    return bool(
        _MOJIBAKE_PAIR.search(text)
        or _RARE_SIGNS.search(text)
        or ("&" in text and _HTML_ENTITY.search(text))
    )


_MAX_PASSES = 4


def repair_text(text: str, use_ftfy: bool = True, gate: bool = True) -> tuple[str, list[str]]:
    """Repair one document's text. Returns (text, fixes) where fixes names what changed.

    Removing a character can bring two others together into what looks like new damage
    ("Â\\x08\\xa0" becomes "Â\\xa0"), so the steps repeat until nothing changes: repairing
    repaired text is a no-op. ``gate=False`` (the unoptimised reference) sends every line
    through ftfy instead of only the lines that show damage.
    """
    fixes: list[str] = []
    if _LINE_BREAKS.search(text):
        text = _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n"))
        fixes.append("line_breaks")
    for _ in range(_MAX_PASSES):
        before = text
        if use_ftfy and (not gate or looks_damaged(text)):
            text = _fix_damaged_lines(text, fixes, gate)
        if _CONTROL.search(text):
            text = _CONTROL.sub("", text)
            _note(fixes, "control_chars")
        if not _is_nfc(text):
            text = unicodedata.normalize("NFC", text)
            _note(fixes, "nfc")
        if text == before:
            break
    return text, fixes


def _is_nfc(text: str) -> bool:
    """``unicodedata.is_normalized("NFC", text)``, answered at once for text below U+0100: no
    such character or pair changes under NFC (combining marks and singletons start at U+0300),
    and ``str.encode("latin-1")`` of such text is a copy, where the check reads every character."""
    if text.isascii():
        return True
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return unicodedata.is_normalized("NFC", text)
    return True


def _note(fixes: list[str], step: str) -> None:
    if step not in fixes:
        fixes.append(step)


def damaged_lines(text: str) -> list[int]:
    """Indexes of the lines of ``text`` that ``looks_damaged``, from one scan of the text per sign
    (a sign never spans a line break, so a line shows one exactly when a match falls in it)."""
    starts = [m.start() for m in _MOJIBAKE_PAIR.finditer(text)]
    starts += [m.start() for m in _RARE_SIGNS.finditer(text)]
    if "&" in text:
        starts += [m.start() for m in _HTML_ENTITY.finditer(text)]
    if len(starts) < 8:  # a few signs: count the line breaks before each
        return sorted({text.count("\n", 0, at) for at in starts})
    breaks = [m.start() for m in _NEWLINE.finditer(text)]
    return sorted({bisect_right(breaks, at) for at in starts})


def _fix_damaged_lines(text: str, fixes: list[str], gate: bool = True) -> str:
    lines = text.split("\n")
    for i in damaged_lines(text) if gate else range(len(lines)):
        line = lines[i]
        fixed, explanation = ftfy.fix_and_explain(line, config=_FTFY_CONFIG)
        if fixed != line:
            lines[i] = fixed
            for action, parameter in explanation or []:
                _note(fixes, f"ftfy:{parameter}" if action == "apply" else f"ftfy:{action}:{parameter}")
    return "\n".join(lines)


class RepairStage(Stage):
    """Repair every document of a batch; a document left with no text becomes a reject."""

    name = "repair"

    def __init__(self, use_ftfy: bool = True, gate: bool = True) -> None:
        super().__init__()
        self.use_ftfy = use_ftfy
        self.gate = gate

    def process(self, batch: Batch) -> Batch:
        kept: list[Document] = []
        for doc in batch.docs:
            text, fixes = repair_text(doc.text, self.use_ftfy, self.gate)
            doc.text = text
            doc.encoding_fixes = fixes
            doc.n_replacement_chars = text.count("\ufffd")
            self.stats.counts.update(f"fix:{f.split(':')[0]}" for f in fixes)
            if doc.n_replacement_chars:
                self.stats.counts["docs_with_replacement_chars"] += 1
                self.stats.counts["replacement_chars"] += doc.n_replacement_chars
            if text.strip():
                kept.append(doc)
            else:
                batch.rejects.append(
                    Reject(doc.source_path, doc.record_index, "empty_text",
                           "no text left after repair", doc.source_sha256)
                )
                self.stats.counts["rejected_empty"] += 1
        self.stats.counts["docs_repaired"] += sum(1 for d in kept if d.encoding_fixes)
        batch.docs = kept
        return batch
