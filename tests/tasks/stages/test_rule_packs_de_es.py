"""The German ("de") and Spanish ("es") boilerplate rule packs: they load, flag chrome, keep prose."""

from __future__ import annotations

import time
import tomllib

import pytest

from corpusclean.tasks.stages import boilerplate
from corpusclean.tasks.stages.boilerplate import REASONS, RULES_DIR, BoilerplateClassifier, available_packs, load_rule_packs

# The reasons rule packs may use (REASONS may also hold reasons that only other layers give).
RULE_REASONS = getattr(boilerplate, "RULE_REASONS", REASONS)


@pytest.fixture(scope="module")
def classifier() -> BoilerplateClassifier:
    # common first, as in every configuration (de/es use its ${WIRE}, ${ITEM}, ${SEP} variables)
    return BoilerplateClassifier(load_rule_packs(["common", "de", "es"]))


@pytest.fixture(scope="module")
def all_packs() -> BoilerplateClassifier:
    return BoilerplateClassifier(load_rule_packs(["common", "en", "fr", "de", "es"]))


# ---------------------------------------------------------------------------------------------
# Loading


@pytest.mark.parametrize("names", [["common", "de", "es"], ["common", "en", "fr", "de", "es"], ["common", "es", "de"]])
def test_packs_load_and_check_their_examples(names):
    rules = load_rule_packs(names)  # loading checks every rule's examples
    assert {"de", "es"} <= set(available_packs())
    ours = [r for r in rules if r.source.startswith(("de.toml", "es.toml"))]
    assert len(ours) > 40
    assert all(r.reason in RULE_REASONS for r in ours)
    assert all(r.max_chars is not None for r in ours)  # chrome is short: long prose skips every regex


@pytest.mark.parametrize("lang", ["de", "es"])
def test_every_rule_is_documented_bounded_and_guarded(lang):
    data = tomllib.loads((RULES_DIR / f"{lang}.toml").read_text(encoding="utf-8"))
    ids = [rule["id"] for rule in data["rule"]]
    assert len(ids) == len(set(ids))
    for rule in data["rule"]:
        assert rule["id"].startswith(f"{lang}-")
        assert rule["reason"] in RULE_REASONS, rule["id"]
        assert rule["examples"], rule["id"]
        assert rule["max_chars"] <= 600, rule["id"]
        if rule.get("match") == "search":  # unanchored rules are prefiltered by keywords
            assert rule["keywords"], rule["id"]
        for context in ("previous", "following"):
            if context in rule:
                assert rule[context]["reason"] in RULE_REASONS


def test_the_packs_do_not_need_en_or_fr():
    # de and es only build on common's variables, so a German-only corpus can use ["common", "de"].
    assert load_rule_packs(["common", "de"]) and load_rule_packs(["common", "es"])


# ---------------------------------------------------------------------------------------------
# German

GERMAN_CHROME = {
    "Newsletter abonnieren": "newsletter",
    "Jetzt kostenlos Newsletter bestellen": "newsletter",
    "Abonnieren Sie unseren Newsletter": "newsletter",
    "Die wichtigsten Nachrichten direkt in Ihr Postfach.": "newsletter",
    "Informiere mich über neue Beiträge per E-Mail.": "newsletter",
    "Push-Benachrichtigungen aktivieren": "notifications",
    "Anmelden": "account",
    "Registrieren": "account",
    "Passwort vergessen?": "account",
    "Bereits registriert? Hier anmelden": "account",
    "Dieser Artikel ist nur für Abonnenten verfügbar.": "account",
    "Kommentare (3)": "comment_count",
    "12 Kommentare": "comment_count",
    "Schreibe einen Kommentar Antworten abbrechen": "comment_count",
    "Deine E-Mail-Adresse wird nicht veröffentlicht. Erforderliche Felder sind mit * markiert.": "comment_count",
    "Wir verwenden Cookies, um Ihnen das beste Nutzererlebnis zu bieten.": "cookies",
    "Alle akzeptieren": "cookies",
    "Akzeptieren": "cookies",
    "Teilen": "share",
    "Teilen auf Facebook": "share",
    "Artikel teilen:": "share",
    "Folgen Sie uns auf Facebook und Instagram": "share",
    "Mehr zum Thema": "related_link",
    "Das könnte Sie auch interessieren": "related_link",
    "Lesen Sie auch: Was der Gipfel in Brüssel gebracht hat": "related_link",
    "Anzeige": "advert",
    "- Anzeige -": "advert",
    "Werbung": "advert",
    "Foto: dpa": "photo_credit",
    "Bild: Jens Büttner/dpa": "photo_credit",
    "Foto: privat": "photo_credit",
    "Quelle: Statistisches Bundesamt": "photo_credit",
    "3 Min. Lesezeit": "reading_time",
    "Lesezeit: 4 Minuten": "reading_time",
    "Startseite": "navigation",
    "Zurück nach oben": "navigation",
    "Zum Inhalt springen": "navigation",
    "Impressum": "navigation",
    "Datenschutz": "navigation",
    "AGB": "navigation",
    "Impressum | Datenschutz | AGB | Kontakt": "navigation",
    "Startseite > Politik > Ausland": "navigation",
    "Alle Rechte vorbehalten.": "copyright",
    "© 2024 Beispiel Verlag GmbH": "copyright",
    "Von Jan Müller": "byline",
    "Von Jan Müller und Eva Schmidt, dpa": "byline",
    "Aktualisiert: 16.08.2025, 10:30 Uhr": "byline",
    "vor 3 Stunden": "byline",
    "(dpa)": "byline",
    "dpa/lby": "byline",
    "Liveticker": "live_blog",
    "Zur Bildergalerie": "media_pointer",
    "Bild 3 von 12": "image_placeholder",
    "Dieser Artikel erschien zuerst auf The Conversation.": "syndication",
}

GERMAN_PROSE = [
    "Die Anmeldung zum Marathon ist bis Freitag möglich.",
    "Anmelden kann man sich bis Freitag im Rathaus.",
    "Die Werbung für Zigaretten ist in Deutschland weitgehend verboten.",
    "Anzeige gegen den Bürgermeister: Die Polizei ermittelt wegen Betrugs.",
    "Wer den Newsletter abonnieren will, findet das Formular auf der Website der Stadt.",
    "Jetzt hat die Stadt auch einen Newsletter eingeführt.",
    "Teilen Sie uns Ihre Meinung mit, schrieb der Bürgermeister in einem offenen Brief.",
    "Kommentare von Lesern zeigen, wie umstritten das Thema ist.",
    "Der Verein hat 3 Kommentare zum Entwurf eingereicht.",
    "Nach oben ging es für den Dax am Montag nicht.",
    "Zurück in Berlin traf sie den Minister.",
    "Mehr zum Thema Klimaschutz erfahren Sie in unserem Dossier.",
    "Von Berlin aus fuhr der Zug weiter nach Hamburg.",
    "Von Menschen und Mäusen",  # a headline, not a byline
    "Von der Leyen will die Ukraine in die EU holen.",
    "Alle Rechte an dem Grundstück liegen bei der Gemeinde.",
    "Impressum und Datenschutz waren Thema der Sitzung.",
    "Akzeptieren will die Opposition den Kompromiss nicht.",
    "Die App lässt sich kostenlos herunterladen und bietet einen Stauwarner.",
    "Der Text wurde zunächst im Bundestag beraten.",
    "Sie können jederzeit kündigen, wenn der Anbieter die Preise erhöht.",
    "Aktiviere in den Einstellungen die Benachrichtigungen für WhatsApp, damit du nichts verpasst.",
    "Zum Video des Vorfalls äußerte sich die Polizei nicht.",
    "Im Rahmen einer Kooperation mit der Universität wurden 30 Studenten befragt.",
    "Vor 3 Jahren begann der Umbau des Bahnhofs.",
    "Quelle der Freude: Der neue Park ist eröffnet.",
    "Cookies sind kleine Textdateien, die beim Besuch einer Website gespeichert werden.",
    "Lesezeit ist Lebenszeit, sagt die Autorin.",
    "Der Text ist für Laien schwer verständlich.",
    "Mit freundlicher Genehmigung der Stadt durften die Schülerinnen und Schüler das Rathaus besichtigen.",
    "Fotos: So feierte die Stadt am Wochenende ihr großes Hafenfest",
    "Erstmals veröffentlicht im Jahr 1851, gilt der Roman heute als Klassiker.",
]


@pytest.mark.parametrize("line,reason", GERMAN_CHROME.items())
def test_german_chrome_is_flagged(classifier, line, reason):
    assert classifier.classify([line]) == [reason]


@pytest.mark.parametrize("line", GERMAN_PROSE)
def test_german_prose_that_looks_like_chrome_is_kept(classifier, line):
    assert classifier.classify([line]) == [None]


# ---------------------------------------------------------------------------------------------
# Spanish

SPANISH_CHROME = {
    "Suscríbete al boletín": "newsletter",
    "Suscríbete a nuestro newsletter": "newsletter",
    "Suscribite gratis y recibí el newsletter de Ambiente en tu email.": "newsletter",
    "Las noticias más importantes directamente en tu correo.": "newsletter",
    "Activa las notificaciones para no perderte nada": "notifications",
    "Iniciar sesión": "account",
    "Regístrate": "account",
    "¿Ya tenés suscripción?": "account",
    "Contenido exclusivo para suscriptores": "account",
    "Suscríbete x $900 1er mes": "account",
    "5 comentarios": "comment_count",
    "Comentarios (12)": "comment_count",
    "Dejá tu comentario": "comment_count",
    "Para comentar debes registrarte y completar los datos generales.": "comment_count",
    "Utilizamos cookies propias y de terceros para mejorar nuestros servicios.": "cookies",
    "Aceptar": "cookies",
    "Aceptar todas las cookies": "cookies",
    "Compartir": "share",
    "Compartir en Facebook": "share",
    "Compartir en Facebook Compartir en Twitter Compartir en WhatsApp": "share",
    "Síguenos en Instagram": "share",
    "Te puede interesar": "related_link",
    "Noticias relacionadas": "related_link",
    "Lee también: Así fue la cumbre de Madrid": "related_link",
    "Publicidad": "advert",
    "Espacio publicitario": "advert",
    "Foto: EFE": "photo_credit",
    "Fotografía: Juan Pérez": "photo_credit",
    "Foto: Archivo": "photo_credit",
    "3 minutos de lectura": "reading_time",
    "Tiempo de lectura: 8 minutos": "reading_time",
    "Inicio": "navigation",
    "Volver arriba": "navigation",
    "Ir al contenido principal": "navigation",
    "Aviso legal": "navigation",
    "Política de privacidad": "navigation",
    "Aviso legal | Política de privacidad | Política de cookies | Contacto": "navigation",
    "Todos los derechos reservados": "copyright",
    "Prohibida su reproducción total o parcial.": "copyright",
    "Por María García": "byline",
    "Redacción": "byline",
    "Publicado el 16/08/2025 a las 10:30": "byline",
    "hace 3 horas": "byline",
    "En vivo": "live_blog",
    "Fotogalería": "media_pointer",
    "Foto 1 de 1": "image_placeholder",
    "Este artículo fue publicado originalmente en The Conversation.": "syndication",
}

SPANISH_PROSE = [
    "La publicidad institucional creció un 12 % el año pasado.",
    "Publicidad engañosa: la Justicia multó a la empresa con 3 millones de pesos.",
    "Compartir el poder no está en los planes del presidente.",
    "Inicio de clases: el ministerio confirmó la fecha para el 1 de marzo.",
    "Por eso, el Gobierno decidió posponer la votación.",
    "Suscribieron el acuerdo publicado en el Boletín Oficial.",
    "Registraron 12 casos nuevos, según el boletín epidemiológico.",
    "Suscribieron un contrato por $3 millones al mes.",
    "Comentarios del ministro generaron polémica en el Congreso.",
    "Hace 3 años que no llueve en la región.",
    "Te puede interesar saber que el museo abre los domingos.",
    "Lo más leído del año fue la crónica sobre el incendio.",
    "Volver a empezar es la consigna del club tras el descenso.",
    "Foto de familia: los líderes posaron en la escalinata del palacio.",
    "Fuente de ingresos: el turismo representa el 10 % del PIB.",
    "Guardar silencio fue la respuesta del acusado.",
    "Regístrate en la plataforma y sube los documentos.",
    "Ingresa tu correo electrónico y tu contraseña en la app del banco.",
    "Los derechos humanos no están reservados a unos pocos.",
    "Aceptar la derrota no fue fácil para el equipo.",
    "Fotos: así se preparan las elefantas para viajar a Brasil antes del invierno",
]


@pytest.mark.parametrize("line,reason", SPANISH_CHROME.items())
def test_spanish_chrome_is_flagged(classifier, line, reason):
    assert classifier.classify([line]) == [reason]


@pytest.mark.parametrize("line", SPANISH_PROSE)
def test_spanish_prose_that_looks_like_chrome_is_kept(classifier, line):
    assert classifier.classify([line]) == [None]


# ---------------------------------------------------------------------------------------------
# Context rules


def test_caption_above_a_german_credit_and_long_paragraphs_stay(classifier):
    lines = [
        "Der Hafen war am Sonntag voller Menschen. Die Stadt rechnet mit einem Rekord.",
        "Besucher am Kai des Hamburger Hafens am Sonntag",
        "Bild: Jens Büttner/dpa",
        "Auch am Montag kamen viele Menschen an den Hafen, wie die Polizei mitteilte.",
    ]
    assert classifier.classify(lines) == [None, "caption", "photo_credit", None]


def test_caption_above_a_spanish_credit(classifier):
    lines = ["Vista del puerto de Valparaíso al amanecer", "Fotografía: Juan Pérez / EFE"]
    assert classifier.classify(lines) == ["caption", "photo_credit"]


def test_a_source_line_does_not_make_the_sentence_above_a_caption(classifier):
    lines = ["Die Zahl der Verkehrstoten ist im Jahr 2023 um 5 Prozent gesunken", "Quelle: Destatis"]
    assert classifier.classify(lines) == [None, "photo_credit"]


def test_related_heading_takes_the_links_until_prose_or_dialogue_resumes(classifier):
    lines = [
        "Mehr zum Thema",
        "Neue Regeln für E-Scooter in der Innenstadt",
        "Bahnstreik: Was Pendler jetzt wissen müssen",
        "Die Stadt hat am Montag neue Regeln für den Verkehr beschlossen.",
    ]
    assert classifier.classify(lines) == ["related_link", "related_link", "related_link", None]
    lines = ["Meistgelesen", "Neue Regeln für E-Scooter", "«Du, weisst du, wo man das bekommt?»", "Öh, glaub ja"]
    assert classifier.classify(lines) == ["related_link", "related_link", None, None]
    lines = ["Noticias relacionadas", "El Gobierno aprueba el presupuesto", "¿Qué cambia con la nueva ley?", "Nada"]
    assert classifier.classify(lines) == ["related_link", "related_link", None, None]


def test_long_prose_ending_with_a_credit_is_not_a_caption(classifier):
    prose = (
        "Die Ausstellung zeigt über zweihundert Werke aus drei Jahrhunderten, darunter viele, die noch nie "
        "öffentlich zu sehen waren, und sie lädt dazu ein, die Geschichte der Stadt neu zu entdecken, "
        "sagt die Kuratorin, die das Projekt seit fünf Jahren vorbereitet hat. © Jan Müller"
    )
    assert len(prose) > 250
    assert classifier.classify([prose]) == [None]


def test_patterns_are_fast_on_adversarial_lines(classifier):
    lines = [
        "Foto: " + "a - b - c - d - " * 7 + "!",
        "Bild: " + "a / b / c / d / " * 7 + "?",
        "Fotos: " + "ab cd, " * 16 + "!",
        "Von " + "Jan Müller, " * 9 + "x",
        "Por " + "Juan Pérez y " * 8 + "!",
    ]
    started = time.perf_counter()
    for line in lines:
        classifier.classify([line])
    assert time.perf_counter() - started < 0.5

