"""langdetect's profiles in compact form (tasks/stages/langprofiles.py): the same map as the stock
factory's, the same detections, kept on disk and rebuilt when the file is damaged."""

import numpy as np
import pytest
from langdetect.detector import Detector

import corpusclean.tasks.stages.langprofiles as langprofiles
from corpusclean.tasks.stages import language
from corpusclean.tasks.stages.fastlangdetect import FastDetector
from tests.tasks.stages.test_fastlangdetect import FR, LONG, NO_FEATURES, PREFIXES, VARIANTS, _factory, _outcome


@pytest.fixture(scope="module")
def compact():
    return langprofiles.compact_factory()


def test_the_same_map_as_the_stock_factory(compact):
    stock = _factory()
    assert compact.langlist == stock.langlist and compact.seed == 0
    mine, theirs = compact.word_lang_prob_map, stock.word_lang_prob_map
    assert list(mine) == list(theirs)  # same n-grams in the same order (the fast detector's rows follow it)
    assert len(mine) == len(theirs) and "the" in mine and "zzzz-not-a-gram" not in mine
    assert all(mine[g] == theirs[g] for g in theirs)  # the same floats, zeros included
    assert all(type(p) is float for p in mine["e"])
    row = np.empty(len(compact.langlist))
    for g in list(theirs)[::97]:  # the fast detector's rows, filled without building the list
        row[:] = -1.0
        mine.fill_row(g, row)
        assert row.tolist() == theirs[g]
    assert mine.get("zzzz-not-a-gram") is None and mine.get("e") == theirs["e"]


@pytest.mark.parametrize("text", VARIANTS + NO_FEATURES + [LONG[lang][:size] for lang, size in PREFIXES])
def test_fast_detector_on_it_gives_the_stock_results(compact, text):
    stock = _outcome(Detector(_factory()), text)
    assert _outcome(FastDetector(compact), text) == stock
    assert _outcome(Detector(compact), text) == stock  # the stock code path (unusual set-ups) too


def test_the_language_stage_uses_it_and_the_reference_chain_does_not(compact):
    assert language.LanguageDetector()._factory is compact
    assert language.LanguageDetector(fast=False)._factory is _factory()
    assert language.LanguageDetector().detect(FR[1])[0] == "fr"


def test_kept_on_disk_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    monkeypatch.setattr(langprofiles, "_folders", lambda: [tmp_path])
    monkeypatch.setattr(langprofiles, "_LOADED", None)
    first = langprofiles.compact_factory()
    files = list(tmp_path.glob("*.profiles"))
    assert len(files) == 1

    def no_parse(*_args):
        raise AssertionError("parsed the JSON profiles although the file was there")

    parse = langprofiles.parse_profiles
    monkeypatch.setattr(langprofiles, "parse_profiles", no_parse)
    monkeypatch.setattr(langprofiles, "_LOADED", None)
    again = langprofiles.compact_factory()
    assert again is not first and list(again.word_lang_prob_map) == list(first.word_lang_prob_map)
    assert again.langlist == first.langlist and again.word_lang_prob_map["de"] == first.word_lang_prob_map["de"]

    files[0].write_bytes(b"not an npz file")
    monkeypatch.setattr(langprofiles, "parse_profiles", parse)
    monkeypatch.setattr(langprofiles, "_LOADED", None)
    rebuilt = langprofiles.compact_factory()
    assert list(rebuilt.word_lang_prob_map) == list(first.word_lang_prob_map)
    assert files[0].read_bytes()[:2] == b"PK"  # replaced by a good one (an npz is a zip)


def test_an_unwritable_cache_folder_only_means_parsing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setattr(langprofiles, "_folders", lambda: [blocker / "profiles"])
    monkeypatch.setattr(langprofiles, "_LOADED", None)
    factory = langprofiles.compact_factory()
    assert len(factory.word_lang_prob_map) == len(_factory().word_lang_prob_map)
