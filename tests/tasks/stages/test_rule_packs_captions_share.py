"""Issue 9 item 4: no prose lost to a positional rule; multi-item share bars are chrome.

A line above a credit is a caption only with evidence of being one (a label with no sentence
end, the picture's date set off by a comma, a position or picture-kind mark); a lead sentence
above a credit is kept. Share and follow bars of several items are flagged in every pack;
prose that names a network is kept.
"""

from __future__ import annotations

import pytest

from corpusclean.tasks.stages.boilerplate import BoilerplateClassifier, load_rule_packs


@pytest.fixture(scope="module")
def classifier() -> BoilerplateClassifier:
    return BoilerplateClassifier(load_rule_packs(["common", "en", "fr", "de", "es"]))


@pytest.fixture(scope="module")
def default_classifier() -> BoilerplateClassifier:
    """The default packs (BoilerplateConfig.rule_packs)."""
    return BoilerplateClassifier(load_rule_packs(["common", "en", "fr"]))


# --- captions above a credit -----------------------------------------------------------------

LEAD = (
    "Le gouvernement a annoncé mardi une réforme des retraites qui doit être présentée au Parlement "
    "avant l'été, malgré l'opposition des syndicats."
)


@pytest.mark.parametrize("credit", ["Crédit photo : Jean Dupont / AFP", "Crédit : ANDREW CABALLERO-REYNOLDS / AFP", "Photo : AFP"])
def test_a_lead_sentence_above_a_credit_is_kept(default_classifier, classifier, credit):
    for c in (default_classifier, classifier):
        assert c.classify_rules([LEAD, credit]) == [None, "photo_credit"]


@pytest.mark.parametrize("sentence", [
    "Le ministre a démissionné mardi soir.",
    "Something has to give.",
    "A spokesman for the governor could not be reached by deadline.",
    "The talks will resume in Geneva next week, officials said on Friday, Aug. 15, 2025.",
    "Lochte-Phelps Rivalry Will Continue in London",       # a Title-Case headline
    "Fahrbericht: E-Transporter LEVC VN5 mit Range Extender",  # a kicker headline
    "Die Stadt rechnet mit einem Rekord, sagte der Bürgermeister am 15. August 2025.",
    "El Gobierno aprobó el presupuesto, según el ministro, el 15 de agosto de 2025.",
])
def test_article_sentences_and_headlines_above_a_credit_are_kept(classifier, sentence):
    assert classifier.classify_rules([sentence, "Photo: Jane Doe / Reuters"]) == [None, "photo_credit"]


@pytest.mark.parametrize("caption, credit", [
    # the seed's caption (004): a scene, with the picture's date set off by a comma
    ("Donald Trump et Vladimir Poutine posent sur un podium sur le tarmac après leur arrivée à la base "
     "militaire Elmendorf-Richardson à Anchorage, en Alaska, le 15 août 2025.", "Crédit : ANDREW CABALLERO-REYNOLDS / AFP"),
    ("Une rame d'essai du tramway au dépôt de Saint-Priest, le 11 mars 2024.", "Crédit photo : Camille RENAUD / AFP"),
    ("Children injured in an Israeli attack are treated at a hospital in Deir Al Balah, Gaza, on Nov. 05, 2023.",
     "Photo: Jane Doe/Anadolu via Getty Images"),
    ("President Donald Trump greets President Vladimir Putin on the tarmac Friday, Aug. 15, 2025, in Anchorage, Alaska.",
     "Photo: Jane Doe / AP"),
    ("Besucher am Kai des Hamburger Hafens in Hamburg, am 15. August 2025.", "Bild: Jens Büttner/dpa"),
    # a label, no sentence end
    ("Labour deputy leader Angela Rayner speaking during Prime Minister's Questions", "Photo: Jane Doe / AFP"),
    ("Vista del puerto de Valparaíso al amanecer", "Fotografía: Juan Pérez / EFE"),
    # position and picture-kind marks
    ("Juan Orlando Hernández (izquierda) y Joaquín Guzmán Loera (derecha) podrían verse cara a cara en Nueva York.",
     "Fotos: Juan Pérez / EFE"),
    ("Es gibt Fusionsexperimente weltweit, um neue Energiequellen zu erschließen. (Symbolbild)", "Foto: Jan Müller / dpa"),
    ("De gauche à droite : Jean Dupont, Marie Martin et Paul Durand à Lyon.", "Photo : Jean Dupont / AFP"),
])
def test_captions_above_a_credit_are_flagged(classifier, caption, credit):
    assert classifier.classify_rules([caption, credit]) == ["caption", "photo_credit"]


def test_the_seed_caption_and_the_lead_in_one_document(default_classifier):
    doc = [
        "Le sommet entre les deux dirigeants n'aura duré que trois heures, mais a été \"constructif\".",
        LEAD,
        "Crédit photo : Jean Dupont / AFP",
        "Donald Trump et Vladimir Poutine posent sur un podium à Anchorage, en Alaska, le 15 août 2025.",
        "Crédit : ANDREW CABALLERO-REYNOLDS / AFP",
        "La rédaction numérique de RTL",
    ]
    assert default_classifier.classify_rules(doc) == [None, None, "photo_credit", "caption", "photo_credit", "byline"]


@pytest.mark.parametrize("line", [
    "Wer die Äste immer wieder auf die Wege zieht, ist unklar (Symbolbild).",
    "Une rame de tramway à Lyon (photo d'illustration)",
    "Son tres los periodos de vacaciones durante el año escolar. Foto: Andina",
    "Vertreterinnen und Vertreter der Jugendverbände sprachen mit Ursula Heinen-Esser. (Bildquelle: Ring der Landjugend)",
])
def test_captions_that_say_so_themselves(default_classifier, line):
    assert default_classifier.classify_rules([line]) == ["caption"]


# --- share and follow bars ---------------------------------------------------------------------

SHARE_BARS = [
    "Partager sur Facebook Partager sur X Copier le lien",
    "Partager sur Facebook Partager sur Twitter Partager par e-mail",
    "Partager : Facebook Twitter E-mail Imprimer",
    "Share on Facebook Share on X Copy link",
    "Share on Pinterest Share on Facebook Share on X (Twitter)",
    "Share: Email Facebook Twitter Print",
    "Email ThisBlogThis!Share to TwitterShare to Facebook",
    "Click to share on Twitter (Opens in new window)",
    "Teilen auf Facebook Teilen auf X Link kopieren",
    "Auf Facebook teilen In Messenger teilen Auf Twitter teilen In Whatsapp teilen Via E-Mail teilen",
    "Teilen auf Facebook: 0Teilen auf Twitter: 0 WhatsApp Teilen…",
    "Compartir en Facebook Compartir en X Copiar enlace",
    "Compartir: Facebook Twitter Copiar link",
    "Facebook Twitter LinkedIn WhatsApp E-mail",
    "RSS | Email | Twitter | Facebook",
    "Twitter / Facebook / RSS",
    "Suivez-nous sur Facebook, Instagram et X",
    "Follow us on Facebook Twitter Instagram",
    "Folgen Sie uns auf Facebook, Instagram und X",
    "Síguenos en Facebook, Instagram y X",
]


@pytest.mark.parametrize("line", SHARE_BARS)
def test_share_bars_are_flagged_in_every_language(classifier, line):
    assert classifier.classify_rules([line]) == ["share"]


@pytest.mark.parametrize("line", [
    "Partager sur Facebook Partager sur X Copier le lien",
    "Share on Facebook Share on X Copy link",
    "Facebook Twitter LinkedIn WhatsApp E-mail",
    "Twitter / Facebook / RSS",
])
def test_share_bars_are_flagged_by_the_default_packs(default_classifier, line):
    assert default_classifier.classify_rules([line]) == ["share"]


@pytest.mark.parametrize("line", [
    "Facebook a annoncé mardi qu'il allait partager ses données avec les chercheurs.",
    "Partager le pouvoir n'est pas dans sa nature, estime l'analyste.",
    "Facebook and Twitter shares fell after the announcement.",
    "Share prices fell sharply after the announcement.",
    "Why Are Facebook, Digg, And Twitter So Hard To Scale?",
    "Twitter, Facebook und Instagram wollen Daten teilen.",
    "WhatsApp und Instagram heißen jetzt anders",
    "Facebook compartirá datos con investigadores.",
    "Compartir en familia es importante para los niños.",
])
def test_prose_that_names_networks_is_kept(classifier, line):
    assert classifier.classify_rules([line]) == [None]


# --- newsletter: the French pack does not take German prose ----------------------------------------

def test_french_newsletter_rule_leaves_german_prose(default_classifier, classifier):
    prose = "Wer den Newsletter abonnieren will, muss künftig eine E-Mail-Adresse angeben."
    assert default_classifier.classify_rules([prose]) == [None]
    assert classifier.classify_rules([prose]) == [None]
    prompt = "Wenn du per E-Mail über Aktuelles informiert werden willst, kannst du den Newsletter hier abonnieren."
    assert default_classifier.classify_rules([prompt]) == ["newsletter"]
    assert classifier.classify_rules([prompt]) == ["newsletter"]
