from hypothesis import given, settings, strategies as st

from corpusclean.tasks.stages.paragraphs import ParagraphStage, split_paragraphs
from corpusclean.tasks.plumbing.records import Batch, Document


def test_single_lines_and_blank_line_blocks_both_split_per_line():
    text = "Titre\n\nPremier paragraphe.\nDeuxième paragraphe.\n\n\n  • Une puce  \n    suite indentée\n"
    spans = split_paragraphs(text)
    assert [text[s:e] for s, e in spans] == [
        "Titre", "Premier paragraphe.", "Deuxième paragraphe.", "• Une puce", "suite indentée",
    ]


def test_whitespace_only_text_has_no_paragraphs():
    assert split_paragraphs(" \n\t\n\u00a0\n") == []


def test_stage_keeps_offsets_into_the_document_text():
    docs = [Document("a", "a.txt", "s", 0, "Un.\n\nDeux.", "utf-8"), Document("b", "b.txt", "s", 0, "Trois.", "utf-8")]
    batch = ParagraphStage()(Batch(docs))
    p = batch.paragraphs
    assert p.text == ["Un.", "Deux.", "Trois."]
    assert p.doc_pos == [0, 0, 1] and p.paragraph_index == [0, 1, 0]
    assert batch.doc_ranges() == [(0, 2), (2, 3)]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=400))
def test_offsets_invariant_on_arbitrary_text(text):
    spans = split_paragraphs(text)
    previous_end = 0
    for start, end in spans:
        paragraph = text[start:end]
        assert paragraph and paragraph == paragraph.strip()
        assert "\n" not in paragraph
        assert start >= previous_end
        previous_end = end
