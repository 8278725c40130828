import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from corpusclean.tasks.plumbing.records import Batch, Document
from corpusclean.tasks.stages.repair import (
    _HTML_ENTITY, _MOJIBAKE_PAIR, _RARE_SIGNS, RepairStage, _is_nfc, damaged_lines, looks_damaged, repair_text,
)

FRENCH = "« Il n’y a pas d’accord », a dit “Trump” ; cessez‑le‑feu\u00a0: oui\u202f! C’est l’été."


def test_correct_french_typography_is_unchanged():
    text, fixes = repair_text(FRENCH)
    assert text == FRENCH
    assert fixes == []


def test_mojibake_line_is_repaired_and_named():
    broken = "Le prÃ©sident a dÃ©clarÃ© lâ€™accord."
    text, fixes = repair_text("Une ligne propre.\n" + broken)
    assert text == "Une ligne propre.\nLe président a déclaré l’accord."
    assert any(f.startswith("ftfy:") for f in fixes)


def test_clean_lines_next_to_a_damaged_one_are_untouched():
    clean = "Elle a dit “oui” — c’est tout…"
    text, _ = repair_text(clean + "\nCafÃ© crÃ¨me")
    assert text.split("\n")[0] == clean


def test_line_endings_controls_and_bom_are_normalised():
    text, fixes = repair_text("\ufeffUn\r\ndeux\rtrois\x00\x07 quatre\u2028cinq")
    assert text == "Un\ndeux\ntrois quatre\ncinq"
    assert "line_breaks" in fixes and "control_chars" in fixes


def test_html_entities_are_unescaped():
    text, _ = repair_text("Tom &amp; Jerry &eacute;t&eacute;")
    assert text == "Tom & Jerry été"


def test_decomposed_accents_become_nfc():
    text, fixes = repair_text("e\u0301te\u0301")
    assert text == "été" and "nfc" in fixes


def test_ftfy_can_be_switched_off():
    broken = "Le prÃ©sident"
    assert repair_text(broken, use_ftfy=False)[0] == broken


def _doc(text: str) -> Document:
    return Document("d", "a.txt", "sha", 0, text, "utf-8")


def test_stage_counts_replacement_chars_and_rejects_empty_text():
    batch = Batch([_doc("bad \ufffd byte \ufffd"), _doc("\x00\x01 \n\t ")])
    stage = RepairStage()
    out = stage(batch)
    assert [d.n_replacement_chars for d in out.docs] == [2]
    assert [r.reason for r in out.rejects] == ["empty_text"]
    assert stage.stats.counts["replacement_chars"] == 2


@pytest.mark.parametrize("text", ["Â\x08\xa0", "Â\x81\xa0", "A\u0302\xa0", "Ã\x00©"])
def test_repair_is_idempotent_when_removals_create_new_damage(text):
    once, _ = repair_text(text)
    assert repair_text(once)[0] == once


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.characters(codec=None) | st.sampled_from("ÂÃâ€™©\xa0\x08\x81\x9d&;#")))
def test_repair_never_raises_and_is_idempotent(text):
    repaired, _ = repair_text(text)
    assert isinstance(repaired, str)
    assert "\r" not in repaired and "\x00" not in repaired
    assert repair_text(repaired)[0] == repaired


def test_lone_surrogates_are_removed_even_without_ftfy():
    text, fixes = repair_text("a\ud800b", use_ftfy=False)
    assert text == "ab" and "control_chars" in fixes
    text.encode("utf-8")  # storable


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="aé Ã©Â\x85\x9c&amp;#233;ﬁ\x1b\u2019x", max_size=30), max_size=12))
def test_damaged_lines_are_the_lines_that_look_damaged(lines):
    """One scan of the whole text finds the same lines as the check line by line."""
    text = "\n".join(lines)
    assert damaged_lines(text) == [i for i, line in enumerate(text.split("\n")) if looks_damaged(line)]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x3FF), max_size=40))
def test_fast_checks_agree_with_the_full_ones(text):
    """The ASCII / Latin-1 shortcuts answer as the full scans do."""
    assert _is_nfc(text) == unicodedata.is_normalized("NFC", text)
    full = bool(_MOJIBAKE_PAIR.search(text) or _RARE_SIGNS.search(text) or ("&" in text and _HTML_ENTITY.search(text)))
    assert looks_damaged(text) == full
