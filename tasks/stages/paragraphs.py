"""Stage 3: split documents into paragraphs, keeping character offsets.

A paragraph is one non-blank line, with surrounding whitespace trimmed. Scraped pages
put one block element per line, sometimes separated by blank lines and sometimes not,
so a line is the unit that is right in both cases. Offsets index the repaired document
text: ``doc.text[char_start:char_end] == paragraph`` for every paragraph.
"""

from __future__ import annotations

import re

from ..plumbing.records import Batch, Paragraphs
from ..plumbing.stage import Stage

# A line's content from its first to its last non-space character ("." never crosses "\n").
_LINE_CONTENT = re.compile(r"\S(?:[^\n]*\S)?")


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """(char_start, char_end) of every paragraph of ``text``, in order."""
    return [m.span() for m in _LINE_CONTENT.finditer(text)]


class ParagraphStage(Stage):
    name = "paragraphs"

    def process(self, batch: Batch) -> Batch:
        out = Paragraphs()
        for pos, doc in enumerate(batch.docs):
            text = doc.text
            for index, (start, end) in enumerate(split_paragraphs(text)):
                out.doc_pos.append(pos)
                out.paragraph_index.append(index)
                out.char_start.append(start)
                out.char_end.append(end)
                out.text.append(text[start:end])
        self.stats.counts["paragraphs"] += len(out)
        batch.paragraphs = out
        return batch
