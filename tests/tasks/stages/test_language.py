from corpusclean.tasks.stages.language import LanguageDetector, LanguageStage
from corpusclean.tasks.stages.paragraphs import ParagraphStage
from corpusclean.tasks.plumbing.records import Batch, Document

FR = ("Le président a rencontré son homologue pendant trois heures à huis clos, sans annoncer d'accord, "
      "mais les deux dirigeants ont promis de se revoir prochainement pour poursuivre les discussions.")
EN = ("The committee met for three hours behind closed doors and did not announce any agreement, "
      "although both leaders promised to meet again soon to continue the discussions about the plan.")


def _batch(*texts: str) -> Batch:
    docs = [Document(f"d{i}", f"{i}.txt", "s", 0, t, "utf-8") for i, t in enumerate(texts)]
    batch = ParagraphStage()(Batch(docs))
    batch.paragraphs.is_boilerplate = [False] * len(batch.paragraphs)
    batch.paragraphs.boilerplate_reason = [None] * len(batch.paragraphs)
    return batch


def test_documents_and_long_paragraphs_get_their_language_short_ones_inherit():
    batch = LanguageStage(paragraph_min_chars=100)(_batch(f"Titre court\n{FR}\n{EN}\n{FR}", EN))
    assert [d.lang for d in batch.docs] == ["fr", "en"]
    assert 0.5 < batch.docs[0].lang_prob <= 1.0
    assert batch.paragraphs.lang == ["fr", "fr", "en", "fr", "en"]


def test_symbols_only_gives_none_without_raising():
    assert LanguageDetector().detect("1234 !!! ---") == (None, None)
    assert LanguageDetector().detect("") == (None, None)


def test_deterministic_across_detectors():
    text = "Ceci est une phrase assez courte."
    assert LanguageDetector().detect(text) == LanguageDetector().detect(text)


def test_chrome_is_left_out_of_the_document_sample():
    batch = _batch("Subscribe to our newsletter\nSign in\n" + FR)
    batch.paragraphs.is_boilerplate = [True, True, False]
    LanguageStage()(batch)
    assert batch.docs[0].lang == "fr"


def test_function_words_point_to_a_switch_of_language():
    from corpusclean.tasks.stages.language import points_elsewhere

    assert points_elsewhere(EN, "fr")
    assert not points_elsewhere(FR, "fr")
    assert not points_elsewhere("Вчера вечером совет принял бюджет", "ru")  # no evidence either way
    assert points_elsewhere(EN, None)


def test_paragraphs_in_the_documents_language_cost_no_detection():
    stage = LanguageStage(paragraph_min_chars=100)
    stage(_batch(f"{FR}\n{FR} Encore.\n{FR} Toujours."))
    assert stage.stats.counts["paragraphs_detected"] == 0


def test_function_word_counts_latin1_path_matches_regex_tokens():
    # Latin-1 samples are tokenised as bytes: the same tokens as \w+ on the lowered text.
    import random
    import re
    from collections import Counter

    from corpusclean.tasks.stages.language import _LATIN1_WORDS, function_word_counts, function_word_table

    for b in range(256):
        assert (re.fullmatch(r"\w", chr(b)) is not None) == (_LATIN1_WORDS[b] == b and b != 0x20)
    table = function_word_table()

    def plain(text: str) -> Counter:
        words = re.findall(r"\w+", text[:400].lower())[:60]
        return Counter([lang for word in words if word in table for lang in table[word]])

    words = list(table)
    chars = [chr(c) for c in list(range(0x20, 0x180)) + [0x130, 0x2019, 0x2026, 0x3A3, 0xDF, 0x1E9E, 0x300, 0x307]]
    rng = random.Random(3)
    for _ in range(3000):
        parts = [
            rng.choice(words) if rng.random() < 0.6 else "".join(rng.choice(chars) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(0, 90))
        ]
        text = rng.choice([" ", ", ", "  ", "'", "_"]).join(parts)
        if rng.random() < 0.3:
            text = text.upper()
        assert function_word_counts(text) == plain(text), text
