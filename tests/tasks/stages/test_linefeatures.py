"""The line classifier with context (tasks/stages/linefeatures.py): features, models, decisions, reasons.

Every line here was written for these tests (several languages, the shapes of real pages).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from corpusclean.tasks.stages import linefeatures as lf
from corpusclean.tasks.stages.boilerplate import REASONS, BoilerplateClassifier, BoilerplateStage, load_rule_packs
from corpusclean.tasks.config import BoilerplateConfig
from corpusclean.tasks.stages.language import stopwords

F = {name: k for k, name in enumerate(lf.LINE_FEATURES)}

EN_PROSE = [
    "Heavy rain overnight pushed the river above its banks in three towns, and the county council closed "
    "every school in the valley on Tuesday morning.",
    "\u201cWe have never seen the water rise this fast,\u201d said the mayor, who spent the night at the emergency "
    "centre with volunteers from the fire brigade.",
    "Forecasters expect the rain to ease by Thursday, but the ground is saturated and the river will stay "
    "high for several days, the environment agency said.",
    "The council said it would publish a full damage assessment next week, once engineers have inspected "
    "the two bridges that were closed to traffic.",
]
FR_PROSE = [
    "Le conseil municipal a voté mardi soir un budget en hausse pour la rénovation des écoles, après un débat "
    "de plus de trois heures où l\u2019opposition a dénoncé un calendrier irréaliste.",
    "Les travaux commenceront au printemps dans quatre établissements du centre-ville, et la mairie promet "
    "que les cours ne seront pas interrompus pendant le chantier.",
    "\u00ab Nous avons attendu ce vote pendant dix ans \u00bb, a déclaré la présidente de l\u2019association des "
    "parents d\u2019élèves, qui suivait la séance depuis la tribune.",
    "Le chantier le plus important concerne le groupe scolaire Jean-Moulin, dont la toiture doit être "
    "entièrement refaite avant la fin de l\u2019année prochaine.",
]
DE_PROSE = [
    "Der Stadtrat hat am Dienstagabend nach einer langen Debatte beschlossen, die Sanierung der Schulen im "
    "Zentrum um ein Jahr vorzuziehen.",
    "Die Arbeiten sollen im Frühjahr beginnen, und der Unterricht wird nach Angaben der Verwaltung während "
    "der Bauzeit nicht unterbrochen.",
    "\u201eWir haben zehn Jahre auf diese Entscheidung gewartet\u201c, sagte die Vorsitzende des Elternbeirats, "
    "die die Sitzung von der Tribüne aus verfolgte.",
    "Das größte Projekt betrifft die Grundschule am Markt, deren Dach bis zum Ende des kommenden Jahres "
    "vollständig erneuert werden muss.",
]
ES_PROSE = [
    "El ayuntamiento aprobó el martes por la noche un presupuesto mayor para la reforma de las escuelas, "
    "después de un debate de más de tres horas.",
    "Las obras empezarán en primavera en cuatro colegios del centro y la alcaldía asegura que las clases no "
    "se interrumpirán durante los trabajos.",
]
PL_PROSE = [
    "Rada miasta przyjęła we wtorek wieczorem większy budżet na remont szkół po debacie trwającej ponad "
    "trzy godziny.",
    "Prace rozpoczną się wiosną w czterech szkołach w centrum, a urząd miasta obiecuje, że lekcje nie "
    "zostaną przerwane.",
]


def vector(line: str, lang: str | None = "en", repeated: bool = False) -> dict[str, float]:
    stop = stopwords()[lang] if lang else None
    return dict(zip(lf.LINE_FEATURES, lf.line_vector(line, stop, repeated)))


# ---------------------------------------------------------------------------------------------
# Language and features


@pytest.mark.parametrize(
    ("lines", "expected"),
    [(EN_PROSE, "en"), (FR_PROSE, "fr"), (DE_PROSE, "de"), (ES_PROSE, "es"), (PL_PROSE, None)],
)
def test_document_language_from_function_words(lines, expected):
    menu = ["Home", "News", "Sport", "Contact"]
    assert lf.document_language(menu + lines + menu) == expected


@pytest.mark.parametrize("lines", [EN_PROSE, FR_PROSE, DE_PROSE, ES_PROSE, PL_PROSE])
def test_language_evidence_holds_for_every_subset_keeping_the_counted_lines(lines):
    """The classifier reuses the packs' language guess when no counted line was flagged: the guess
    on any subset of lines that keeps the counted ones (in order) is the same."""
    import random

    menu = ["Home", "News", "Sport", "Contact", "Sign up for our daily newsletter and more"]
    page = menu + lines + menu + lines
    lang, counted = lf.document_language_evidence(page)
    assert lang == lf.document_language(page)
    assert counted and all(len(page[i][:100].split()) >= 5 for i in counted)
    rng = random.Random(7)
    for _ in range(200):
        kept = [i for i in range(len(page)) if i in counted or rng.random() < 0.5]
        assert lf.document_language([page[i] for i in kept]) == lang


def _joined(pages: list[list[str]]) -> tuple[list[str], list[tuple[int, int]]]:
    """The lines of many pages in one list, and each page's [start, end) in it."""
    lines, ranges = [], []
    for page in pages:
        ranges.append((len(lines), len(lines) + len(page)))
        lines.extend(page)
    return lines, ranges


def test_classify_many_with_the_packs_language_decides_the_same(full):
    """Passing each page's language evidence (as the stage does) changes no decision, whether or
    not the rules flagged a counted line."""
    from tests.tasks.stages.test_boilerplate import ENGLISH_PROSE

    pages = [EN_PAGE, ENGLISH_PROSE, EN_PAGE[3:], EN_PAGE[:12], FR_PROSE + EN_PAGE]
    lines, ranges = _joined(pages)
    evidence = [lf.document_language_evidence(page) for page in pages]
    assert full.classify_batch(lines, ranges, evidence) == full.classify_batch(lines, ranges)
    # a wrong guess is not used where a counted line was flagged
    rules = full.classify_rules(lines)
    wrong = [("de", counted) for _, counted in evidence]
    flagged = [any(rules[a + i] is not None for i in counted) for (a, _), (_, counted) in zip(ranges, evidence)]
    if any(flagged):
        content = full.content
        assert content.classify_many(lines, ranges, rules, [e if f else None for e, f in zip(wrong, flagged)]) == \
            content.classify_many(lines, ranges, rules)


def test_document_language_needs_evidence():
    assert lf.document_language([]) is None
    assert lf.document_language(["Home", "World", "Politics", "Sign in"]) is None  # short lines only


def test_model_shapes_match_their_feature_names():
    assert len(lf.LINE_WEIGHTS) == len(lf.LINE_FEATURES) == len(lf.line_vector("a b c", None))
    assert len(lf.CONTEXT_WEIGHTS) == len(lf.CONTEXT_FEATURES)
    vectors = lf.context_vectors([1.0, -1.0, 2.0], [2.0, 1.0, 3.0], [False, True, False], [False] * 3, [False] * 3, [0] * 3)
    assert len(vectors) == 3 and all(len(v) == len(lf.CONTEXT_FEATURES) for v in vectors)
    assert set(lf.CLASSIFIER_REASONS) <= set(REASONS)


def test_sentence_and_length_features():
    v = vector(EN_PROSE[0])
    assert v["terminal"] == 1.0 and v["colon_end"] == 0.0 and v["truncated"] == 0.0
    assert v["chars_ge300"] == 0.0 and v["chars_lt150"] == 1.0 and v["chars_lt80"] == 0.0
    assert v["stop_ratio"] > 0.25 and v["lang_unknown"] == 0.0
    quote = vector("\u00ab Nous avons attendu ce vote pendant dix ans. \u00bb", "fr")
    assert quote["terminal"] == 1.0  # closing quote after the full stop
    assert vector("Ce que nous savons pour l'instant :", "fr")["colon_end"] == 1.0
    assert vector("Storm warnings issued for the coast as the wind picks up…")["truncated"] == 1.0
    assert vector("Train strike called off after late talks...")["truncated"] == 1.0
    assert vector("Two sentences here. And a second one follows.")["inner_sentences"] == 1.0
    assert vector("Home")["chars_lt10"] == 1.0 and vector("Home")["terminal"] == 0.0


def test_function_words_depend_on_the_document_language():
    line = FR_PROSE[1]
    assert vector(line, "fr")["stop_ratio"] > 0.25
    assert vector(line, "en")["stop_ratio"] < 0.1
    unknown = vector(line, None)
    assert unknown["stop_ratio"] == 0.0 and unknown["lang_unknown"] == 1.0


@pytest.mark.parametrize(
    "line",
    [
        "Read the full report at https://example.org/report",
        "www.example.com",
        "Write to the editors: letters@example.org",
        "Follow @valleynews for updates",
        "Mehr Infos auf stadtwerke-beispiel.de",
    ],
)
def test_links_handles_and_addresses(line):
    assert vector(line)["url"] == 1.0


def test_no_link_in_plain_prose():
    assert vector(EN_PROSE[1])["url"] == 0.0
    assert vector("He paid $5.20 for the ticket at 3.30 pm.")["url"] == 0.0


def test_separators_list_markers_dates_and_digits():
    assert vector("About us | Contact | Privacy policy | Terms")["separators"] == 3.0
    assert vector("Politik · Wirtschaft · Kultur", "de")["separators"] == 2.0
    assert vector("- Parents should check the council website.")["list_marker"] == 1.0
    assert vector("• Bus routes are diverted around the bridge.")["list_marker"] == 1.0
    assert vector("2. Preheat the oven to 180 degrees.")["list_marker"] == 1.0
    assert vector("2.5 million people live here.")["list_marker"] == 0.0
    assert vector("12.03.2024 10:45")["date"] == 1.0
    assert vector("19.10.2019 Neue Regeln für E-Scooter in der Innenstadt", "de")["starts_date"] == 1.0
    assert vector("200 g Zucker", "de")["digit_tokens"] == pytest.approx(1 / 3)
    assert vector("Nothing numeric in this line")["digit_tokens"] == 0.0


def test_capitals_chrome_words_and_addressing_the_reader():
    assert vector("MERCI DE VOTRE AIDE", "fr")["caps_tokens"] == 1.0
    assert vector("Home About Shop Contact")["title_tokens"] == 1.0
    assert vector(EN_PROSE[0])["title_tokens"] < 0.2
    cookies = vector("We use cookies to improve your experience on our website.")
    assert cookies["chrome_short"] == 1.0 and cookies["chrome_ratio"] >= 0.1 and cookies["address_ratio"] > 0
    assert vector(EN_PROSE[2])["chrome_ratio"] == 0.0
    # German formal address inside a sentence, not a sentence-initial "Sie"
    assert vector("Hier können Sie Ihre Einstellungen ändern.", "de")["address_ratio"] > 0
    assert vector("Sie kamen am Montag an.", "de")["address_ratio"] == 0.0


def test_repetition_is_passed_through():
    assert vector("Home", repeated=True)["repeated"] == 1.0 and vector("Home")["repeated"] == 0.0


def test_line_model_scores_prose_above_chrome_in_several_languages():
    def z(line: str, lang: str | None) -> float:
        return sum(v * w for v, w in zip(lf.line_vector(line, stopwords()[lang] if lang else None), lf.LINE_WEIGHTS))

    chrome = {
        "en": ["About us | Contact | Privacy policy", "Sign up for updates and never miss a story on our website", "Tags"],
        "fr": ["Accueil | Politique | Société", "Cliquez ici pour télécharger notre app", "Partager"],
        "de": ["Impressum | Datenschutz | Kontakt", "Klicken Sie hier, um den Newsletter zu abonnieren", "Teilen"],
    }
    prose = {"en": EN_PROSE, "fr": FR_PROSE, "de": DE_PROSE}
    for lang in chrome:
        worst_prose = min(z(line, lang) for line in prose[lang])
        best_chrome = max(z(line, lang) for line in chrome[lang])
        assert worst_prose > 0 > best_chrome, lang


# ---------------------------------------------------------------------------------------------
# Context helpers


def test_max_sum_run_finds_the_main_block():
    assert lf._max_sum_run([-1.0, -0.5, 2.0, 1.0, -0.2, 3.0, -4.0, 1.0]) == (2, 5)
    assert lf._max_sum_run([-1.0, -2.0]) == (0, 0)  # all negative: the least bad single line
    assert lf._max_sum_run([]) == (-1, -1)


def test_core_is_the_first_part_with_enough_evidence():
    # a block of 8 lines cut before line 4 (after rule-flagged chrome, another such line near):
    # the article (lines 0-3) comes before a comment section with more evidence (lines 4-7)
    rule_prev = [False, False, False, False, True, False, False, False]
    rules_near = [0, 0, 0, 2, 2, 2, 0, 0]
    article, comments = [2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0]
    assert lf._core(0, 7, rule_prev, rules_near, article + comments) == (0, 3)  # 8 >= 0.4 * 12
    assert lf._core(0, 7, rule_prev, rules_near, [1.0, 0.0, 0.0, 0.0] + comments) == (4, 7)  # 1 < 0.4 * 12
    assert lf._core(0, 7, rule_prev, [0, 0, 0, 1, 1, 1, 0, 0], article + comments) == (0, 7)  # one rule line: no cut
    assert lf._core(2, 5, rule_prev, rules_near, [0.0] * 8) == (2, 3)  # no evidence: the first part


def test_smoothing_ignores_single_weak_lines_but_not_runs():
    # one weak line inside a strong run stays content; a long weak run does not
    z = [-3.0, -3.0, 2.0, 2.0, -0.5, 2.0, 2.0, -3.0, -3.0, -3.0]
    assert lf._smooth(z, 1.0) == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    assert lf._smooth(z, 0.0) == [0, 0, 1, 1, 0, 1, 1, 0, 0, 0]
    assert lf._smooth([], 1.0) == []


# ---------------------------------------------------------------------------------------------
# Decisions on whole pages


EN_PAGE = [
    "Skip to main content",
    "Home",
    "World",
    "Politics",
    "Business",
    "Sport",
    "Culture",
    "Sign in",
    "Floods close schools across the valley",
    "By Jane Doe",
    EN_PROSE[0],
    EN_PROSE[1],
    "What happens next",
    EN_PROSE[2],
    "- Parents should check the council website before leaving home.",
    "- Bus routes 4 and 12 are diverted around the flooded bridge.",
    EN_PROSE[3],
    "Share this article",
    "Facebook | Twitter | Email",
    "More from World",
    "Storm warnings issued for the coast as the wind picks up…",
    "Train strike called off after late talks with the union…",
    "Museum reopens after a two-year renovation…",
    "About us | Contact | Privacy policy | Terms",
    "www.valley-news.example",
    "© 2024 Valley News",
]
EN_ARTICLE = {
    "Floods close schools across the valley", *EN_PROSE, "What happens next",
    "- Parents should check the council website before leaving home.",
    "- Bus routes 4 and 12 are diverted around the flooded bridge.",
}
EN_CHROME = {
    "Home", "World", "Politics", "Business", "Sport", "Culture", "More from World",
    "Storm warnings issued for the coast as the wind picks up…",
    "Train strike called off after late talks with the union…",
    "Museum reopens after a two-year renovation…",
    "About us | Contact | Privacy policy | Terms", "www.valley-news.example",
}

DE_PAGE = [
    "Zum Inhalt springen",
    "Startseite",
    "Politik",
    "Wirtschaft",
    "Kultur",
    "Sport",
    "Lokales",
    "Schulen im Zentrum werden früher saniert",
    DE_PROSE[0],
    DE_PROSE[1],
    DE_PROSE[2],
    "Was sich ändert",
    DE_PROSE[3],
    "Weitere Artikel",
    "Neue Regeln für E-Scooter in der Innenstadt…",
    "Bahnstreik: Was Pendler jetzt wissen müssen…",
    "Impressum | Datenschutz | Kontakt | AGB",
    "© 2024 Stadtanzeiger",
]
DE_ARTICLE = {"Schulen im Zentrum werden früher saniert", *DE_PROSE, "Was sich ändert"}
DE_CHROME = {
    "Startseite", "Politik", "Wirtschaft", "Kultur", "Sport", "Lokales",
    "Neue Regeln für E-Scooter in der Innenstadt…", "Bahnstreik: Was Pendler jetzt wissen müssen…",
    "Impressum | Datenschutz | Kontakt | AGB",
}


@pytest.fixture(scope="module")
def full() -> BoilerplateClassifier:
    return BoilerplateClassifier(load_rule_packs(["common", "en", "fr"]), lf.ContentClassifier())


@pytest.mark.parametrize(("page", "article", "chrome"), [(EN_PAGE, EN_ARTICLE, EN_CHROME), (DE_PAGE, DE_ARTICLE, DE_CHROME)])
def test_article_kept_chrome_removed_on_a_page(full, page, article, chrome):
    reasons = dict(zip(page, full.classify(page)))
    for line in article:
        assert reasons[line] is None, f"article line removed ({reasons[line]}): {line!r}"
    for line in chrome:
        assert reasons[line] is not None, f"chrome kept: {line!r}"


def test_reasons_say_why(full):
    reasons = dict(zip(EN_PAGE, full.classify(EN_PAGE)))
    assert {reasons[line] for line in ("Home", "World", "Politics", "Business", "Sport")} == {"navigation"}
    # a row of footer links is a rule's (en-footer-row); a row of other links, on its own, the
    # classifier's link list
    assert reasons["About us | Contact | Privacy policy | Terms"] == "navigation"
    alone = full.classify([*EN_PAGE[:17], "Weather | Traffic | Lottery | Obituaries"])
    assert alone[-1] == "link_list"
    assert reasons["www.valley-news.example"] in ("link_list", "source_url")
    assert reasons["Storm warnings issued for the coast as the wind picks up…"] is not None
    assert reasons["Share this article"] == "share"  # a rule's reason is kept
    assert reasons["© 2024 Valley News"] == "copyright"
    assert all(r is None or r in REASONS for r in reasons.values())


def test_french_article_with_interleaved_figures_is_kept(full):
    page = [
        "Accueil",
        "Politique",
        "Société",
        "Économie",
        "Les écoles du centre-ville rénovées dès le printemps",
        FR_PROSE[0],
        "![]()",
        "Le groupe scolaire Jean-Moulin, le 12 mars 2024.",
        "Crédit : Jean DUPONT / AFP",
        FR_PROSE[1],
        "Ce qui change",
        FR_PROSE[2],
        "• La cantine restera ouverte pendant les travaux.",
        FR_PROSE[3],
        "Publicité",
        "Mentions légales | Contact | Plan du site",
    ]
    reasons = dict(zip(page, full.classify(page)))
    for line in [page[4], *FR_PROSE, "Ce qui change", "• La cantine restera ouverte pendant les travaux."]:
        assert reasons[line] is None, f"{line!r} -> {reasons[line]}"
    assert reasons["Crédit : Jean DUPONT / AFP"] == "photo_credit"
    assert reasons["Mentions légales | Contact | Plan du site"] is not None


def test_short_documents_are_left_to_the_rules(full):
    doc = ["Je m'abonne à la newsletter", FR_PROSE[1], "Ça coûte 5 € pour l\u2019œuvre.", "Politique | Société", "Sport"]
    assert full.classify(doc) == ["newsletter", None, None, None, None]
    assert lf.ContentClassifier(min_lines=1).classify(doc[1:], [None] * 4)[2:] != [None, None]


def test_running_text_of_short_sentences_is_left_to_the_rules(full):
    """Lines that are sentences are a minority on web pages; a document made of them is not one."""
    from tests.tasks.stages.test_boilerplate import ENGLISH_PROSE

    assert full.classify(ENGLISH_PROSE) == [None] * len(ENGLISH_PROSE)
    content = lf.ContentClassifier()
    assert content.score(ENGLISH_PROSE, [None] * len(ENGLISH_PROSE)).content_p == [None] * len(ENGLISH_PROSE)
    # the guard can be turned off: then the page model applies (and is unsure of short sentences)
    strict = lf.ContentClassifier(prose_fraction=1.01)
    assert strict.score(ENGLISH_PROSE, [None] * len(ENGLISH_PROSE)).content_p[0] is not None


def test_a_document_of_prose_is_kept_whole(full):
    for lines in (EN_PROSE + EN_PROSE[::-1], FR_PROSE + FR_PROSE[::-1], DE_PROSE + DE_PROSE[::-1]):
        assert full.classify(lines) == [None] * len(lines)


def test_scores_explain_the_decisions():
    content = lf.ContentClassifier()
    reasons = [None] * len(EN_PAGE)
    scores = content.score(EN_PAGE, reasons)
    assert scores.lang == "en"
    assert all(p is not None and 0.0 <= p <= 1.0 for p in scores.content_p)
    decided = content.classify(EN_PAGE, reasons)
    assert [r is None for r in decided] == scores.kept


def test_deterministic_pure_and_picklable(full):
    page = list(EN_PAGE)
    first = full.classify(page)
    assert full.classify(page) == first and page == EN_PAGE
    clone = pickle.loads(pickle.dumps(full))
    assert clone.classify(page) == first


def test_model_file_names_every_feature_in_order(tmp_path):
    line, context, decision = lf.load_model()
    assert (line, context) == (lf.LINE_WEIGHTS, lf.CONTEXT_WEIGHTS)
    assert lf.ContentClassifier().threshold == decision.get("threshold", 0.5)
    # the stage uses the fitted threshold unless the config sets one
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage as Stage

    assert Stage(BoilerplateConfig()).classifier.content.threshold == lf.ContentClassifier().threshold
    assert Stage(BoilerplateConfig(classifier_threshold=0.05)).classifier.content.threshold == 0.05
    data = __import__("json").loads(lf.MODEL_PATH.read_text(encoding="utf-8"))
    data["line_weights"] = dict(reversed(list(data["line_weights"].items())))  # same names, wrong order
    bad = tmp_path / "model.json"
    bad.write_text(__import__("json").dumps(data), encoding="utf-8")
    with pytest.raises(ValueError):
        lf.load_model(bad)


def test_config_switches_the_classifier():
    page = "\n".join(EN_PAGE)
    from tests.tasks.stages.test_boilerplate import make_batch

    on = BoilerplateStage(BoilerplateConfig())(make_batch([page])).paragraphs.boilerplate_reason
    off = BoilerplateStage(BoilerplateConfig(classifier=False))(make_batch([page])).paragraphs.boilerplate_reason
    assert on[EN_PAGE.index("World")] == "navigation" and off[EN_PAGE.index("World")] is None
    assert all(o == n for o, n in zip(off, on) if o is not None)  # rules keep their reasons
    keep_more = BoilerplateStage(BoilerplateConfig(classifier_threshold=0.05))(make_batch([page])).paragraphs
    assert sum(keep_more.is_boilerplate) <= sum(r is not None for r in on)


def test_running_text_check_matches_the_feature_based_one():
    from corpusclean.tasks.stages.linefeatures import _running_text, _sentence_fraction, document_lines

    pages = [
        ["Accueil", "Le conseil a voté le budget mardi soir.", "Partager", "Les travaux dureront deux ans.", "«Une bonne nouvelle», dit-il."],
        ["Home | News | Sport", "The council met on Tuesday.", "Read more", "It approved the plan (after a long debate)."],
        ["Вчера совет принял бюджет.", "Подробнее", "Работы начнутся весной."],
        ["Startseite", "Der Rat hat am Dienstag getagt.", "Mehr zum Thema", "Impressum"],
    ]
    for lines in pages:
        for reasons in ([None] * len(lines), [None] + ["share"] + [None] * (len(lines) - 2)):
            doc = document_lines(lines, reasons)
            lang, fraction = _running_text(lines, reasons)
            assert lang == doc.lang
            assert fraction == _sentence_fraction(doc.vectors)


def _context_inputs(rng, m: int):
    z = [rng.uniform(-8.0, 8.0) if rng.random() > 0.05 else rng.choice([-600.0, 0.0, 600.0]) for _ in range(m)]
    log_words = [rng.uniform(0.0, 5.0) for _ in range(m)]
    short = [rng.random() < 0.5 for _ in range(m)]
    rule_prev = [rng.random() < 0.1 for _ in range(m)]
    rule_next = [rng.random() < 0.1 for _ in range(m)]
    rules_near = [rng.randrange(0, 4) for _ in range(m)]
    return z, log_words, short, rule_prev, rule_next, rules_near


def test_context_matrix_equals_the_line_by_line_definition():
    """The column-wise context features are context_vectors' (sums in the same order; only the
    sigmoid may differ in the last bit), on random documents of every size up to long ones."""
    import random

    import numpy as np

    rng = random.Random(7)
    for m in [1, 2, 3, 5, 8, 15, 40, 120, 600, 1500]:
        for _ in range(5):
            args = _context_inputs(rng, m)
            expected = np.array(lf.context_vectors(*args))
            got = lf.context_matrix(*args)
            assert got.shape == expected.shape == (m, len(lf.CONTEXT_FEATURES))
            assert np.allclose(got, expected, rtol=1e-12, atol=1e-12), (m, np.abs(got - expected).max())
    assert lf.context_matrix([], [], [], [], [], []).shape == (0, len(lf.CONTEXT_FEATURES))


def test_context_of_many_documents_at_once_equals_each_document_alone():
    """Neighbourhoods stop at each document's edges: the batch computation is context_vectors of
    each document (window sums are added in another order: equal up to rounding)."""
    import random

    import numpy as np

    rng = random.Random(11)
    for _ in range(40):
        sizes = [rng.choice([1, 2, 3, 5, 8, 15, 40, 200]) for _ in range(rng.randrange(1, 8))]
        docs = [_context_inputs(rng, m) for m in sizes]
        joined = [sum((list(d[k]) for d in docs), []) for k in range(6)]
        bounds, at = [], 0
        for m in sizes:
            bounds.append((at, at + m))
            at += m
        got = lf.context_matrix_many(*joined, bounds)
        expected = np.concatenate([np.array(lf.context_vectors(*d)) for d in docs])
        assert np.allclose(got, expected, rtol=1e-12, atol=1e-12), np.abs(got - expected).max()
    assert lf.context_matrix_many([], [], [], [], [], [], []).shape == (0, len(lf.CONTEXT_FEATURES))


def test_batch_and_single_document_decisions_agree(full):
    """classify_many (features and context for many documents at once) decides as classify does
    for each document alone."""
    from tests.tasks.stages.test_boilerplate import ENGLISH_PROSE

    pages = [EN_PAGE, ENGLISH_PROSE, EN_PAGE[3:], EN_PAGE[:12]]
    lines, ranges = _joined(pages)
    together = full.classify_batch(lines, ranges)
    assert together == [reason for page in pages for reason in full.classify(page)]


# --- reader comments under an article (tasks/stages/lang/comment_markers.toml)

_ARTICLE_PARAGRAPHS = [
    f"Paragraph {k} of the report: the harbour authority counted the boats that stayed in port during the storm, "
    "and the figures show that the smaller fishing crews lost most of their income for the week, while the ferry "
    "company kept its timetable with only two cancellations and a delay on the evening crossing."
    for k in range(1, 9)
]
_COMMENTS = [
    "harbourfan says:",
    "I work on one of those boats and the week was even worse than the report says, we lost the whole catch.",
    "Reply",
    "Marta Lindqvist says:",
    "The ferry company did well, but they raised the prices again last month and nobody seems to mention it.",
    "Reply",
    "old_skipper says:",
    "Good to see the numbers written down at last, the council should read this before the next budget.",
    "Reply",
]
_MENU = ["Home", "News", "Harbour", "Weather", "Sport", "Contact", "About", "Archive"]
THREAD_PAGE = [*_MENU, "Storm week in the harbour: what the boat counts show", *_ARTICLE_PARAGRAPHS, *_COMMENTS,
               "Leave a Reply", *_MENU]


def test_reader_comments_under_an_article_are_dropped(full):
    reasons = full.classify(THREAD_PAGE)
    by_line = dict(zip(THREAD_PAGE, reasons))
    assert all(by_line[p] is None for p in _ARTICLE_PARAGRAPHS)
    assert all(by_line[c] is not None for c in _COMMENTS)
    assert by_line[_COMMENTS[1]] == "comment_thread"  # kept by the classifier alone (prose), dropped here
    # the batch path decides the same
    assert full.classify_batch(THREAD_PAGE, [(0, len(THREAD_PAGE))]) == reasons
    # switched off, the comments read like prose and stay
    keep_comments = BoilerplateClassifier(full.rules, lf.ContentClassifier(comment_threads=False))
    kept = dict(zip(THREAD_PAGE, keep_comments.classify(THREAD_PAGE)))
    assert kept[_COMMENTS[1]] is None
    assert "comment_thread" not in kept.values()


def test_a_discussion_page_is_not_a_comment_thread(full):
    """Markers with little article before them: a forum thread, whose posts are the content."""
    page = [*_MENU, "Forum: storm week in the harbour", *_COMMENTS, *_COMMENTS[:3], *_MENU]
    by_line = dict(zip(page, full.classify(page)))
    assert "comment_thread" not in by_line.values()
    threads = lf.default_comment_threads()
    assert threads.start(page, [None] * len(page)) is None
    # one quoted speaker is not a thread either
    assert threads.start(["The minister said:", *_ARTICLE_PARAGRAPHS], [None] * 9) is None


def test_the_common_comment_by_lines_and_stamps_are_markers():
    """WordPress-style threads: "NAME Reply:", a dated by-line, "NAME on DATE TIME", a bare stamp."""
    threads = lf.default_comment_threads()
    for line in ["Deidre Reply:", "27. Jun, 2012 / Rand says:", "Heather on October 23rd, 2012 1:37 pm",
                 "June 27th, 2012 at 7:03 am", "Jan 5, 2013 @ 10:12 pm"]:
        assert threads.is_marker(line), line
    # prose that merely mentions a date, time or reply is not
    for line in ["The meeting on October 23rd, 2012 1:37 pm was the last one before the storm arrived in the port.",
                 "Her reply came a week later, and it changed the council's plans for the harbour: the ferry stays.",
                 "October 23rd, 2012"]:
        assert not threads.is_marker(line), line
    # three of them within the window after a long article start the thread at the first
    stamps = ["Heather on October 23rd, 2012 1:37 pm", "We lost power for two days too, and the boats stayed in.",
              "Kate on October 23rd, 2012 1:38 pm", "Same here, the ferry was the only thing that kept running.",
              "Erica on October 23rd, 2012 1:43 pm", "Thanks for writing this up, it helps to see the figures."]
    page = [*_ARTICLE_PARAGRAPHS, *stamps]
    assert threads.start(page, [None] * len(page)) == len(_ARTICLE_PARAGRAPHS)
    # the markers of many pages at once (the stage's path) are the same, and so is the start
    flags = threads.marker_flags(page)
    assert flags.tolist() == [threads.is_marker(line) for line in page]
    found = [i for i, flag in enumerate(flags) if flag]
    assert found == threads.markers(page)
    assert threads.start(page, [None] * len(page), found) == len(_ARTICLE_PARAGRAPHS)


def test_blog_comment_stamps_with_names_weekdays_and_buttons_are_markers():
    """Movable Type / TypePad / WordPress theme stamps: a weekday, "Posted by: NAME at", the comment's
    buttons after the stamp."""
    threads = lf.default_comment_threads()
    for line in ["Matt Jaycox | November 9, 2012 12:13 AM | Reply", "Sunday, September 16, 2012 at 7:41 pm | Permalink",
                 "Posted by: Ellen at September 10, 2012 11:40 AM", "Posted by tj on November 5, 2012 at 7:56 am | permalink | Reply",
                 "Comment #2 - Posted by: Kurt M at November 10, 2012 5:55 PM", "Jane Doe • June 25th, 2012, 7:53 am",
                 "Liv • Saturday, November 3, 2012 at 9:15 am"]:
        assert threads.is_marker(line), line
    # a sentence holding a stamp, a stamp with words after it, a date without a time: not markers
    for line in ["The council met again on Sunday, September 16, 2012 at 7:41 pm and voted to keep the ferry running.",
                 "Matt Jaycox | November 9, 2012 12:13 AM | Reply to the council's letter about the ferry",
                 "Posted by: Ellen at September 10, 2012", "Ashutosh Joshi, October 31, 2012"]:
        assert not threads.is_marker(line), line


def test_the_articles_own_stamp_does_not_hide_the_thread_under_it(full):
    """A marker above the story (its by-line's date stamp) with a whole article before the next
    marker is the article's, not a comment's: the thread is looked for after the article. A
    discussion page (a short first post under its stamp) is still left alone."""
    threads = lf.default_comment_threads()
    byline = "Anna Berg | October 22, 2012 9:00 AM"
    assert threads.is_marker(byline)
    headline = THREAD_PAGE[len(_MENU)]
    page = [*_MENU, headline, byline, *_ARTICLE_PARAGRAPHS, *_COMMENTS, "Leave a Reply", *_MENU]
    first_comment = len(_MENU) + 2 + len(_ARTICLE_PARAGRAPHS)
    assert threads.start(page, [None] * len(page)) == first_comment
    by_line = dict(zip(page, full.classify(page)))
    assert all(by_line[p] is None for p in _ARTICLE_PARAGRAPHS)
    assert all(by_line[c] is not None for c in _COMMENTS)
    assert by_line[_COMMENTS[1]] == "comment_thread"  # prose: the classifier alone keeps it
    # the first post of a discussion is short: its stamp starts a thread with nothing before it, left alone
    stamps = ["Heather | October 23, 2012 1:37 PM | Reply", _COMMENTS[1], "Kate | October 23, 2012 1:38 PM | Reply",
              _COMMENTS[4], "Erica | October 23, 2012 1:43 PM | Reply", _COMMENTS[7]]
    assert all(threads.is_marker(line) for line in stamps[::2])
    forum = [*_MENU, *stamps, *stamps, *_MENU]
    assert threads.start(forum, [None] * len(forum)) is None
    # a short text under the by-line, then the comments: not enough of an article either
    short = [*_MENU, byline, _ARTICLE_PARAGRAPHS[0], *_COMMENTS, *_MENU]
    assert threads.start(short, [None] * len(short)) is None


def test_marker_flags_read_off_the_joined_text_are_is_marker():
    """The stage's path (``:`` and lengths from the code points, regexes only on the lines whose
    edge characters a match can have) flags exactly the lines is_marker flags."""
    import random

    threads = lf.default_comment_threads()
    lines = [*THREAD_PAGE, *_COMMENTS, "", ":", "Reply:", "réply", "RÉPONDRE", "Report Abuse", "Reply | Permalink",
             "reply·like", "12 points", "１２ votes", "\U0001F600 says:", "Jane says:\U0001F600", "\ud800Reply",
             "Re: the harbour (Score:3, Interesting)", "by jdoe on Aug 8, 2012 9:08 PM PDT up reply actions",
             "Heather on October 23rd, 2012 1:37 pm", "x" * 61, "Reply" + " " * 56, "ſays:", "Kelvin LIKE"]
    rng = random.Random(3)
    pool = "Rr eplyLIKEk:|·0123 votesays\u00a0\U0001F600é"
    lines += ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 12))) for _ in range(3000)]
    text = lf.BatchText(lines)
    rows = np.arange(len(lines))
    assert text.has_colon().any()
    assert lf.default_comment_threads().marker_flags_at(text, rows).tolist() == [threads.is_marker(x) for x in lines]
    some = rows[::7]
    assert threads.marker_flags_at(text, some).tolist() == [threads.is_marker(lines[i]) for i in some]


# --- kept lines outside the core that share no words with it (drop_unrelated)

_CORE = [
    "The harbour authority counted the fishing boats that stayed in port during the storm week.",
    "Smaller fishing crews lost most of their income, the harbour figures show.",
]


def test_unrelated_lines_outside_the_core_are_removed():
    lines = [
        "Celebrity chef opens glamorous restaurant downtown",  # outside, no shared word: removed
        "Storm figures: fishing crews and harbour boats",  # outside, shares the story's words: kept
        "Celebrity chef opens glamorous restaurant downtown.",  # ends like a sentence: kept
        "Celebrity chef opens glamorous restaurant uptown",  # scores above the bar: kept
        "Celebrity chef",  # too few content words: kept
        *_CORE,
    ]
    in_core = [False] * 5 + [True, True]
    probs = [0.65, 0.65, 0.65, 0.75, 0.65, 0.9, 0.9]
    terminal = [False, False, True, False, False, True, True]
    keep = [True] * 7
    lf.drop_unrelated(keep, in_core, probs, terminal, lines, 0.7, 0.1, 3, 100)
    assert keep == [False, True, True, True, True, True, True]
    # a core too short to judge: nothing removed
    keep = [True] * 7
    lf.drop_unrelated(keep, in_core, probs, terminal, lines, 0.7, 0.1, 3, 1000)
    assert all(keep)
    # removed core lines are not the core's vocabulary
    keep = [True] * 5 + [False, False]
    lf.drop_unrelated(keep, in_core, probs, terminal, lines, 0.7, 0.1, 3, 0)
    assert keep[:2] == [False, False]


def test_unrelated_lines_batch_and_single_document_decisions_agree():
    """With every kept line outside the core a candidate (pmax 1), classify_many removes the same
    unrelated lines as classify of each document alone, and some line is removed."""
    from tests.tasks.stages.test_boilerplate import ENGLISH_PROSE

    content = lf.ContentClassifier(unrelated_pmax=1.01, unrelated_share=0.5, unrelated_words=1, unrelated_core_chars=0)
    off = lf.ContentClassifier(unrelated_pmax=0.0)
    pages = [EN_PAGE, THREAD_PAGE, ENGLISH_PROSE, EN_PAGE[3:], THREAD_PAGE[5:]]
    lines, ranges = _joined(pages)
    none = [None] * len(lines)
    together = content.classify_many(lines, ranges, none)
    alone = [reason for page in pages for reason in content.classify(page, [None] * len(page))]
    assert together == alone
    assert together != off.classify_many(lines, ranges, none)


# --- lines above the article that restate it (keep_lead_lines)


def test_lead_lines_that_restate_the_article_are_kept():
    lines = [
        "Weather Sport Business Culture",  # no content word in the core: stays removed
        "Celebrity chef opens glamorous restaurant downtown",  # another story's teaser: stays removed
        "Storm week: fishing boats stayed in the harbour",  # the headline: kept
        "Fishing crews",  # too few content words: stays removed
        *_CORE,
    ]
    words = [len(line.split()) for line in lines]
    in_core = [False] * 4 + [True, True]
    keep = [False] * 4 + [True, True]
    lf.keep_lead_lines(keep, in_core, lines, words, 4, 10, 0.4, 3, 20, 1000)
    assert keep == [False, False, True, False, True, True]
    # only the window above the core's first line is read
    keep = [False] * 4 + [True, True]
    lf.keep_lead_lines(keep, in_core, lines, words, 4, 1, 0.4, 3, 20, 1000)
    assert keep == [False] * 4 + [True, True]
    # a long line is not a headline; removed core lines are not the core's vocabulary
    keep = [False] * 4 + [True, True]
    lf.keep_lead_lines(keep, in_core, lines, words, 4, 10, 0.4, 3, 5, 1000)
    assert keep == [False] * 4 + [True, True]
    keep = [False] * 6
    lf.keep_lead_lines(keep, in_core, lines, words, 4, 10, 0.4, 3, 20, 1000)
    assert not any(keep)


def test_the_headline_above_a_page_is_kept_and_batch_and_single_documents_agree(full):
    """A headline the line model removes (a short title among menus above the article) is kept when
    it restates the story; classify_many decides as classify of each document alone."""
    headline = "Harbour authority counts boats kept in port by storm"
    teaser = "Celebrity chef opens glamorous restaurant downtown tonight"
    page = [*_MENU, headline, teaser, "Photos", *_ARTICLE_PARAGRAPHS, *_MENU]  # three lines above the article
    content = full.content
    off = lf.ContentClassifier(lead_window=0)
    by_line = dict(zip(page, content.classify(page, [None] * len(page))))
    assert by_line[headline] is None
    assert by_line[teaser] is not None
    assert off.classify(page, [None] * len(page))[page.index(headline)] is not None  # the step is what keeps it
    from tests.tasks.stages.test_boilerplate import ENGLISH_PROSE

    pages = [page, EN_PAGE, THREAD_PAGE, ENGLISH_PROSE, page[6:]]
    lines, ranges = _joined(pages)
    none = [None] * len(lines)
    assert content.classify_many(lines, ranges, none) == [r for p in pages for r in content.classify(p, [None] * len(p))]


def test_batch_text_spans_follow_the_lines():
    """BatchText's code points and spans: NULs, astral characters and empty lines included; a
    line with a newline is refused."""
    lines = ["", "ab\x00", "\x00", "\U0001F600x", ""]
    text = lf.BatchText(lines)
    assert [text.units[a:b].tobytes().decode("utf-32-le") for a, b in zip(text.starts, text.ends)] == lines
    assert text.lengths.tolist() == [len(x) for x in lines]
    assert lf.BatchText.of(["a\nb", "c"]) is None
