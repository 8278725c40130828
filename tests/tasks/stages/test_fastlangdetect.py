"""FastDetector gives langdetect's results bit for bit (stock Detector side by side).

``python -m tests.tasks.test_fastlangdetect`` prints the speed per call of both.
"""

from __future__ import annotations

import random
import threading
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langdetect import DetectorFactory
from langdetect import detector_factory
from langdetect.detector import Detector
from langdetect.detector_factory import init_factory
from langdetect.lang_detect_exception import LangDetectException
from langdetect.utils.ngram import NGram

import corpusclean.tasks.stages.fastlangdetect as fast
from corpusclean.tasks.stages.fastlangdetect import FastDetector, create_detector

# -------------------------------------------------------------------------------------
# Texts

FR = [
    "Le gouvernement a présenté mercredi un projet de loi destiné à réduire le déficit public "
    "de deux points d'ici à la fin de la législature, sans augmenter les impôts des ménages.",
    "Selon les chiffres publiés par l'Insee, la croissance a légèrement ralenti au deuxième "
    "trimestre, pénalisée par une consommation en berne et par le recul de l'investissement.",
    "Dans les rues de Marseille, les habitants s'inquiètent de la hausse des loyers : « On ne "
    "peut plus se loger dans le quartier où l'on a grandi », confie une retraitée.",
    "Les négociations entre les syndicats et la direction ont repris jeudi matin après une "
    "semaine de grève qui a paralysé une grande partie du réseau ferroviaire régional.",
]
EN = [
    "The central bank left interest rates unchanged on Thursday, saying inflation was easing "
    "more slowly than expected and that it would wait for more data before cutting.",
    "Firefighters battled the blaze for most of the night as strong winds pushed the flames "
    "toward several villages, forcing hundreds of residents to leave their homes.",
    "In a statement released late on Tuesday, the company said it had reached an agreement "
    "with the regulator and would pay a fine of forty million dollars.",
    "Researchers at the university found that children who read for pleasure every day did "
    "better at school, regardless of their parents' income or level of education.",
]
DE = [
    "Die Bundesregierung hat am Mittwoch einen Gesetzentwurf vorgelegt, der die Bürokratie "
    "für kleine Unternehmen deutlich verringern soll, wie ein Sprecher mitteilte.",
    "Nach den schweren Unwettern der vergangenen Tage sind in Süddeutschland noch immer "
    "tausende Haushalte ohne Strom, die Aufräumarbeiten werden Wochen dauern.",
]
ES = [
    "El Gobierno aprobó este martes una reforma que pretende facilitar el acceso a la vivienda "
    "de los jóvenes, aunque la oposición la considera insuficiente y tardía.",
    "Miles de personas se manifestaron el domingo en el centro de la capital para exigir "
    "mejores condiciones laborales y un aumento del salario mínimo.",
]
IT = [
    "Il consiglio comunale ha approvato ieri sera il nuovo piano per il traffico, che prevede "
    "la chiusura del centro storico alle auto private nei fine settimana.",
    "Secondo gli esperti, la siccità di quest'anno potrebbe ridurre in modo significativo la "
    "produzione di olio d'oliva in molte regioni del Mezzogiorno.",
]
OTHER_SCRIPTS = [
    "Вчера вечером городской совет принял бюджет на следующий год после долгих споров.",
    "Η κυβέρνηση ανακοίνωσε νέα μέτρα για τη στήριξη των νοικοκυριών απέναντι στην ακρίβεια.",
    "أعلنت الحكومة اليوم عن خطة جديدة لدعم الشركات الصغيرة والمتوسطة في جميع أنحاء البلاد.",
    "یکی از مهم‌ترین مسائل امروز ایران، افزایش قیمت‌ها و کاهش قدرت خرید مردم است.",
    "政府昨天宣布了一项新的经济刺激计划，以支持中小企业和促进就业。",
    "政府昨天宣佈了一項新的經濟刺激計劃，以支持中小企業和促進就業。",
    "政府は昨日、中小企業を支援するための新しい経済対策を発表しました。",
    "きょうはとてもいいてんきですね。カタカナもすこしまぜてみます。",
    "정부는 어제 중소기업을 지원하기 위한 새로운 경제 대책을 발표했다.",
    "Chính phủ đã công bố một kế hoạch mới nhằm hỗ trợ các doanh nghiệp nhỏ và vừa.",
    # Vietnamese with combining marks (exercises NGram.normalize_vi)
    "Chi\u0301nh phu\u0309 đa\u0303 công bô\u0301 mô\u0323t kê\u0301 hoa\u0323ch mơ\u0301i.",
    "सरकार ने कल छोटे और मझोले उद्योगों की मदद के लिए एक नई योजना की घोषणा की।",
    "รัฐบาลประกาศแผนใหม่เพื่อช่วยเหลือธุรกิจขนาดเล็กและขนาดกลางทั่วประเทศ",
    "הממשלה הודיעה אתמול על תוכנית חדשה לסיוע לעסקים קטנים ובינוניים.",
    "Hükümet dün küçük ve orta ölçekli işletmeleri desteklemek için yeni bir plan açıkladı.",
    "Rząd ogłosił wczoraj nowy plan wsparcia dla małych i średnich przedsiębiorstw.",
    "Guvernul a anunțat ieri un nou plan de sprijin pentru întreprinderile mici și mijlocii.",
    "Uhlaselt ja kõrvalisi teid pidi jõudsid päästjad külasse alles õhtuks.",
]
MIXED = [
    "Moscou (Москва) et Athènes (Αθήνα) ont signé un accord commercial, 合作协议, 협정.",
    "The word 東京 means eastern capital; Токио is its Russian spelling and Τόκιο the Greek one.",
    "АБВГД abc ЕЖЗИЙ def КЛМНО ghi ПРСТУ jkl ФХЦЧШ mno",
    "Tokyo 東京 とうきょう トウキョウ 도쿄 Токио Τόκιο طوكيو טוקיו",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ ａｎｄ ｄｉｇｉｔｓ １２３ in a sentence.",
    "emoji 😀🎉 in text, and 𝐦𝐚𝐭𝐡 𝐛𝐨𝐥𝐝 letters with ǅ title case and ﬁ ligature",
]
UPPER = [
    "BREAKING NEWS: THE PRIME MINISTER HAS RESIGNED AFTER A VOTE OF NO CONFIDENCE",
    "URGENT : LE PRÉSIDENT DE LA RÉPUBLIQUE S'ADRESSERA AUX FRANÇAIS CE SOIR À 20 HEURES",
    "NATO and the EU met in BRUSSELS with the UN, the IMF and the WHO on Monday.",
    "McDonald's, iPhone, eBay, YouTube, PowerPoint, JavaScript and MacBook are brand names.",
    "AbCdEfGh IjKlMnOp QrStUvWx YZ aBcDeFgH iJkLmNoP",
    "ÉTÉ ÇA ÀÉÈ ÜBER STRAẞE ΑΘΗΝΑ МОСКВА",
]
WEBBY = [
    "Contact us at press@example.com or visit https://www.example.com/news?id=42&lang=fr for more.",
    "Écrivez à redaction@journal.fr ; l'article est sur http://journal.fr/2025/08/16/sommet.html",
    "https://a.b/c http://x.y/z mail@x.org user.name+tag@sub.domain.co.uk",
    "Voir https://fr.wikipedia.org/wiki/Alaska pour l'histoire de l'État, ou écrire à info@alaska.gov.",
]
NO_FEATURES = [
    "",
    " ",
    "1234 !!! ---",
    "3.14159 2.71828 1.41421",
    "((( ))) [[[ ]]] {{{ }}} <<< >>>",
    "2025-08-16 12:34:56 +02:00",
    "\u2018\u2019\u201c\u201d\u2026\u2014",
    "42",
    "\n\t\r  \n",
]


def _long(paragraphs: list[str], size: int = 2100) -> str:
    text, k = "", 0
    while len(text) < size:
        text += paragraphs[k % len(paragraphs)] + ("\n\n" if k % 3 == 2 else " ")
        k += 1
    return text


LENGTHS = [10, 15, 25, 40, 60, 100, 150, 250, 400, 600, 1000, 1500, 2000]
LONG = {"fr": _long(FR), "en": _long(EN), "de": _long(DE), "es": _long(ES), "it": _long(IT)}
PREFIXES = [(lang, n) for lang in LONG for n in LENGTHS]

SENTENCES = FR + EN + DE + ES + IT + OTHER_SCRIPTS + MIXED + UPPER + WEBBY
# Sentences, their halves and thirds, and a few with odd spacing.
VARIANTS = (
    SENTENCES
    + [s[: len(s) // 2] for s in SENTENCES]
    + [s[len(s) // 3 :] for s in SENTENCES]
    + [s.upper() for s in FR + EN]
    + [s.lower() for s in UPPER]
    + ["  " + s.replace(" ", "   ") + "  " for s in SENTENCES[::4]]
    + [" ".join(OTHER_SCRIPTS[i : i + 3]) for i in range(0, len(OTHER_SCRIPTS), 2)]
)


# -------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def factory():
    DetectorFactory.seed = 0
    init_factory()
    return detector_factory._factory


def _factory():
    DetectorFactory.seed = 0
    init_factory()
    return detector_factory._factory


def _outcome(detector: Detector, texts, configure=None):
    """(all language probabilities as hex, sorted results) or the exception raised."""
    if configure is not None:
        configure(detector)
    for text in texts if isinstance(texts, list) else [texts]:
        detector.append(text)
    try:
        result = [(lang.lang, lang.prob.hex()) for lang in detector.get_probabilities()]
    except LangDetectException as exc:
        return ("LangDetectException", exc.code, str(exc))
    except ZeroDivisionError as exc:
        return ("ZeroDivisionError", str(exc))
    return [p.hex() for p in detector.langprob], result


def assert_same(factory, texts, configure=None):
    stock = _outcome(Detector(factory), texts, configure)
    ours = _outcome(FastDetector(factory), texts, configure)
    assert ours == stock
    return stock


# -------------------------------------------------------------------------------------
# Bit-identical results


@pytest.mark.parametrize("lang,size", PREFIXES)
def test_prefixes_of_news_paragraphs(factory, lang, size):
    outcome = assert_same(factory, LONG[lang][:size])
    if size >= 250:
        assert outcome[1][0][0] == lang


@pytest.mark.parametrize("text", VARIANTS)
def test_sentences_scripts_case_and_urls(factory, text):
    assert_same(factory, text)


@pytest.mark.parametrize("text", NO_FEATURES)
def test_no_features_raise_in_both(factory, text):
    outcome = assert_same(factory, text)
    assert outcome[0] == "LangDetectException"


@pytest.mark.parametrize("size", [100, 600, 3000, 12000])
def test_seed_articles(factory, seeds_dir, size):
    files = sorted(seeds_dir.glob("*.txt"))
    assert len(files) == 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert_same(factory, text[:size])
        assert_same(factory, text[len(text) // 2 :][:size])


_ALPHABET = st.one_of(
    st.characters(codec="utf-8"),  # any code point but surrogates
    st.characters(min_codepoint=0x20, max_codepoint=0x24F),  # ASCII, Latin-1, Latin Extended
    st.sampled_from(" " * 8 + "\n\t.,;:!?'\"-()0123456789@/"),
    st.sampled_from("\u0300\u0301\u0303\u0309\u0323aeiouyAEIOUYâêôăơư"),  # Vietnamese marks
    st.characters(min_codepoint=0x370, max_codepoint=0x6FF),  # Greek, Cyrillic, Hebrew, Arabic
    st.characters(min_codepoint=0x1E00, max_codepoint=0x1EFF),  # Latin Extended Additional
    st.characters(min_codepoint=0x3040, max_codepoint=0x30FF),  # kana
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7AF),  # Hangul
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
)
_WORDS = sorted({w for s in SENTENCES for w in s.split()})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=_ALPHABET, max_size=300))
def test_hypothesis_any_text(text):
    assert_same(_factory(), text)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.sampled_from(_WORDS), st.text(alphabet=_ALPHABET, max_size=6)),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([" ", "  ", "\n", ", ", " - "]),
)
def test_hypothesis_word_salad(words, sep):
    assert_same(_factory(), sep.join(words))


@pytest.mark.parametrize(
    "name,configure",
    [
        ("alpha", lambda d: d.set_alpha(0.9)),
        ("small alpha", lambda d: d.set_alpha(0.01)),
        ("prior", lambda d: d.set_prior_map({"fr": 0.2, "en": 0.5, "de": 0.3})),
        ("max length", lambda d: d.set_max_text_length(37)),
        ("n_trial", lambda d: setattr(d, "n_trial", 3)),
        ("iteration limit", lambda d: setattr(d, "ITERATION_LIMIT", 7)),
        ("odd limit", lambda d: setattr(d, "ITERATION_LIMIT", 13)),
        ("threshold", lambda d: setattr(d, "CONV_THRESHOLD", 0.5)),
        ("never converges", lambda d: setattr(d, "CONV_THRESHOLD", 1.5)),
        ("alpha width", lambda d: setattr(d, "ALPHA_WIDTH", 0.5)),
        ("seed 42", lambda d: setattr(d, "seed", 42)),
        ("seed -7", lambda d: setattr(d, "seed", -7)),
        ("seed str", lambda d: setattr(d, "seed", "corpusclean")),
        ("seed float", lambda d: setattr(d, "seed", 1.5)),
        ("zero alpha", lambda d: d.set_alpha(-0.5)),
    ],
)
def test_parameters(factory, name, configure):
    for text in (FR[0], EN[1][:60], OTHER_SCRIPTS[0], MIXED[3], LONG["de"][:1200], "1234"):
        assert_same(factory, text, configure)


class _LoggingDetector(Detector):
    def _normalize_prob(self, prob):
        maxp = super()._normalize_prob(prob)
        self.maxps.append(maxp)
        return maxp


@pytest.mark.parametrize("text", [FR[2], EN[3][:80], MIXED[1]])
def test_convergence_checks_are_exact(factory, text):
    """With CONV_THRESHOLD set to a maxp langdetect computes (or the float just below), a
    maxp one ulp off would stop a trial at another check and change the results."""
    import math

    logger = _LoggingDetector(factory)
    logger.maxps = []
    logger.append(text)
    logger.get_probabilities()
    picks = sorted(set(logger.maxps))
    picks = picks[:: max(1, len(picks) // 12)]
    for maxp in picks:
        for threshold in (maxp, math.nextafter(maxp, 0.0)):
            assert_same(factory, text, lambda d: setattr(d, "CONV_THRESHOLD", threshold))


def test_several_appends(factory):
    assert_same(factory, [FR[0][:50], " ", "  ", EN[0], "https://x.org/a b@c.de", OTHER_SCRIPTS[4]])
    assert_same(factory, [FR[0], EN[0]], lambda d: d.set_max_text_length(20))


def test_seedless_and_verbose_take_the_stock_path(factory, capsys):
    detector = FastDetector(factory)
    detector.seed = None
    detector.append(FR[0])
    assert detector.detect() == "fr"  # random seed: the result may vary, not the language
    assert_same(factory, EN[0], lambda d: d.set_verbose())
    out = capsys.readouterr().out
    assert "==>" in out


# -------------------------------------------------------------------------------------
# The pieces


def test_same_attributes_as_detector(factory):
    stock, ours = Detector(factory), FastDetector(factory)
    mine = dict(vars(ours))
    assert mine.pop("_random") is None and mine.pop("_factory") is factory
    theirs = dict(vars(stock))
    assert isinstance(theirs.pop("random"), random.Random)
    assert mine == theirs
    assert isinstance(ours.random, random.Random)  # built on demand


@pytest.mark.parametrize("text", VARIANTS[::3] + NO_FEATURES + [LONG["fr"]])
def test_text_cleaning_and_ngrams_match(factory, text):
    stock, ours = Detector(factory), FastDetector(factory)
    stock.append(text)
    ours.append(text)
    assert ours.text == stock.text
    stock.cleaning_text()
    ours.cleaning_text()
    assert ours.text == stock.text
    assert ours._extract_ngrams() == stock._extract_ngrams()


def test_cleaning_drops_latin_from_mostly_non_latin_text(factory):
    for text in ("abc Москва Санкт-Петербург", "東京都庁 Tokyo 東京都庁舎 新宿区西新宿"):
        stock, ours = Detector(factory), FastDetector(factory)
        stock.text = ours.text = text
        stock.cleaning_text()
        ours.cleaning_text()
        assert ours.text == stock.text != text


def test_normalize_every_code_point():
    every = "".join(map(chr, range(0x110000)))
    expected = "".join(NGram.normalize(ch) for ch in every)
    assert fast.normalize_text(every) == expected  # astral: str.translate
    assert fast.normalize_text(every[:0x10000]) == expected[:0x10000]  # BMP: table
    pairs = "x\ud83d\ude00é\udc00"  # a surrogate pair stays two code points
    assert fast.normalize_text(pairs) == "".join(map(NGram.normalize, pairs))


def test_stream_is_the_mersenne_twister_output():
    for seed in (0, 42, "corpusclean"):
        reference = random.Random()
        reference.seed(seed)
        stream = fast._Stream(seed)
        words = stream.ensure(40_000)  # grows past the first block
        assert len(words) >= 40_000
        assert [reference.getrandbits(32) for _ in range(len(words))] == words.tolist()


def test_gauss_and_choice_replay():
    reference = random.Random()
    reference.seed(0)
    words = fast._Stream(0).ensure(1000)
    assert reference.random() == fast._random_at(words, 0)
    n, pos, got = 1234, 2, []
    shift = 32 - n.bit_length()
    while len(got) < 100:
        value = int(words[pos]) >> shift
        pos += 1
        if value < n:
            got.append(value)
    assert got == [reference.choice(range(n)) for _ in range(100)]


def test_small_caches_still_give_the_same_results(factory, monkeypatch):
    monkeypatch.setattr(fast, "_MODELS", weakref.WeakKeyDictionary())
    monkeypatch.setattr(fast, "_INITIAL_ROWS", 8)
    monkeypatch.setattr(fast, "_WORD_CACHE_LIMIT", 5)
    for text in SENTENCES[::2] + [LONG["it"][:800]]:
        assert_same(factory, text)
    model = fast._MODELS[factory]
    assert model.matrix.shape[0] > 8 and len(model.words) <= 6


def test_threads_share_the_caches(factory):
    texts = SENTENCES[::2]
    expected = {t: _outcome(Detector(factory), t) for t in texts}
    failures = []

    def work(offset):
        for k in range(len(texts)):
            text = texts[(k + offset) % len(texts)]
            if _outcome(FastDetector(factory), text) != expected[text]:
                failures.append(text)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_create_detector(factory):
    detector = create_detector(factory, alpha=0.7)
    assert isinstance(detector, FastDetector) and detector.alpha == 0.7
    with pytest.raises(LangDetectException):
        create_detector(DetectorFactory())


def test_language_detector_uses_it(factory, monkeypatch):
    import corpusclean.tasks.stages.language as language

    made = []

    def spy(f, alpha=None):
        made.append(create_detector(f, alpha))
        return made[-1]

    monkeypatch.setattr(language, "create_detector", spy)
    detector = language.LanguageDetector()
    stock = Detector(factory)
    stock.append(FR[1])
    assert detector.detect(FR[1]) == ("fr", round(stock.get_probabilities()[0].prob, 6))
    assert detector.detect("1234 !!!") == (None, None)
    assert len(made) == 2 and all(type(d) is FastDetector for d in made)


def _many_outcomes(factory, texts, configure=None):
    """detect_many's langprob per text (the one-by-one path where it answers None), as _outcome."""
    detectors = []
    for text in texts:
        detector = FastDetector(factory)
        if configure is not None:
            configure(detector)
        detector.append(text)
        detectors.append(detector)
    out = []
    for text, detector, langprob in zip(texts, detectors, fast.detect_many(detectors)):
        if langprob is None:
            out.append(_outcome(FastDetector(factory), text, configure))
        else:
            detector.langprob = langprob
            out.append(([p.hex() for p in langprob], [(lang.lang, lang.prob.hex()) for lang in detector.get_probabilities()]))
    return out


_MANY_TEXTS = (
    VARIANTS + NO_FEATURES + [LONG[lang][:size] for lang, size in PREFIXES] + [s[:k] for s in SENTENCES for k in (3, 12, 40)]
)


@pytest.mark.parametrize("min_active,window", [(1, 2048), (8, 2048), (1, 64), (3, 300)])
@pytest.mark.parametrize("trials", [1, 3, 7])
def test_detect_many_is_bit_identical(factory, monkeypatch, min_active, window, trials):
    # every text through the lockstep (min_active=1), the default tail hand-over, and windows
    # too short for most texts (the one-by-one fallback)
    monkeypatch.setattr(fast, "_MANY_MIN_ACTIVE", min_active)
    monkeypatch.setattr(fast, "_MANY_WINDOW", window)

    def configure(detector):
        detector.n_trial = trials

    stock = [_outcome(Detector(factory), text, configure) for text in _MANY_TEXTS]
    assert _many_outcomes(factory, _MANY_TEXTS, configure) == stock


def test_detect_many_seed_articles_and_unusual_setups(factory, seeds_dir, monkeypatch):
    monkeypatch.setattr(fast, "_MANY_MIN_ACTIVE", 1)
    texts = []
    for path in sorted(seeds_dir.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts += [text[:size] for size in (100, 600, 3000, 12000)]
    assert _many_outcomes(factory, texts) == [_outcome(Detector(factory), t) for t in texts]
    # a detector with another alpha or a prior is left to the one-by-one path
    odd = FastDetector(factory)
    odd.set_alpha(0.9)
    odd.append(texts[0])
    plain = FastDetector(factory)
    plain.append(texts[1])
    assert fast.detect_many([plain, odd])[1] is None
    assert fast.detect_many([]) == []


def test_language_detector_detect_many_matches_detect():
    import corpusclean.tasks.stages.language as language

    texts = _MANY_TEXTS * 2 + ["", "1234 !!!"]
    one = language.LanguageDetector()
    many = language.LanguageDetector()
    assert many.detect_many(texts) == [one.detect(t) for t in texts]
    stock = language.LanguageDetector(fast=False)
    assert stock.detect_many(texts[:40]) == [one.detect(t) for t in texts[:40]]


# -------------------------------------------------------------------------------------
# Speed (not a test): python -m tests.tasks.test_fastlangdetect


def _benchmark() -> None:
    import time
    from pathlib import Path

    factory = _factory()
    seeds = Path(__file__).resolve().parents[4] / "shared" / "seeds"
    french = " ".join(p.read_text(encoding="utf-8") for p in sorted(seeds.glob("*.txt"))) or LONG["fr"]
    samples = {"fr": french, "en": _long(EN, 9000)}

    def per_call(make, text, calls=150, rounds=7):
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(calls):
                detector = make(factory)
                detector.append(text)
                detector.get_probabilities()
            best = min(best, (time.perf_counter() - start) / calls)
        return best * 1e3

    for size in (300, 600, 1000):
        for lang, source in samples.items():
            texts = [source[o : o + size] for o in range(0, 8 * 1000, 1000)]
            stock = sum(per_call(Detector, t) for t in texts) / len(texts)
            ours = sum(per_call(FastDetector, t) for t in texts) / len(texts)
            print(f"{lang} {size:5d} chars: langdetect {stock:.3f} ms, FastDetector {ours:.3f} ms, x{stock / ours:.1f}")


if __name__ == "__main__":
    _benchmark()


def test_word_ngrams_fast_path_matches_the_state_machine():
    # words without an inner space or two capitals take a direct slicing path
    from langdetect.utils.ngram import NGram

    def stock(key):  # langdetect's _extract_ngrams loop, before its membership test
        ngram = NGram()
        out = []
        for ch in key:
            ngram.add_char(ch)  # normalize is the identity on these characters
            if ngram.capitalword:
                continue
            for n in range(1, NGram.N_GRAM + 1):
                if len(ngram.grams) < n:
                    break
                out.append(ngram.grams[-n:])
        return out

    rng = random.Random(4)
    alphabet = "abcdeXYZÉé"
    keys = ["", " ", "a", "a ", "A ", "AB ", "Ab ", "aB ", "ABC", "xYz ", "x y ", "  ", " a", "aa  "]
    keys += ["".join(rng.choice(alphabet + " ") for _ in range(rng.randint(0, 9))) for _ in range(3000)]
    for key in keys:
        # as _extract_ngrams: a lone " " is never a feature
        assert [g for g in fast._word_ngrams(key) if g != " "] == [g for g in stock(key) if g != " "], key


def test_fill_gives_the_rows_of_rows_for(factory):
    # the word cache filled in bulk (numpy n-gram codes) holds what rows_for computes word by word,
    # in the same order; words that are not simple (two capitals, a leading non-space blank) are left
    # to rows_for; the rows of a fresh model and of one that already has some are the same n-grams
    rng = random.Random(11)
    alphabet = "abcdefghijklmnopqrstuvwxyzAÉéçßøπΩжЖ中文日本語한국어\u0301\U0001f600'-.0123\t"
    words = ["", "a", "A", "Ab", "aB", "AB", "Ωmega", "über", "\tx", "x\ty", "中文", "é" * 40, "\U0001f600", "ⅻ"]
    words += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(5000)]
    words = list(dict.fromkeys(words))
    for warm in (0, 300):
        model = fast._Model(factory)
        for w in words[:warm]:
            model.rows_for(w + " ")
        model.fill(words)
        filled = {w: model.words[w] for w in words if w in model.words}
        assert len(filled) > 4000
        reference = fast._Model(factory)
        for w, rows in filled.items():
            expect = [reference.ngram_of_row[r] for r in fast.np.frombuffer(reference.rows_for(w + " "), fast.np.int32)]
            got = [model.ngram_of_row[r] for r in fast.np.frombuffer(rows, fast.np.int32)]
            assert got == expect, w
        for g, r in model.row_of.items():  # every row holds its n-gram's profile
            assert model.matrix[r].tolist() == [float(x) for x in factory.word_lang_prob_map[g]]


def test_detect_many_with_bulk_filled_words_is_bit_identical(factory, monkeypatch):
    # fresh models (every word new: filled in bulk) against the stock detector
    rng = random.Random(5)
    vocab = ["the", "of", "und", "der", "le", "la", "el", "pour", "Haus", "Straße", "économie", "дом", "中文", "NASA",
             "x", "Ünïcödé", "https://example.org/a", "mail@example.org"]
    texts = [" ".join(rng.choice(vocab) + rng.choice(["", "s", "en", "é"]) for _ in range(rng.randint(1, 120)))
             for _ in range(60)]
    monkeypatch.setattr(fast, "_MODELS", weakref.WeakKeyDictionary())
    dets = []
    for text in texts:
        d = create_detector(factory)
        d.append(text)
        dets.append(d)
    got = fast.detect_many(dets)
    for text, langprob in zip(texts, got):
        stock = factory.create()
        stock.append(text)
        try:
            stock.get_probabilities()
        except LangDetectException:
            assert langprob is None
            continue
        if langprob is not None:
            assert langprob == stock.langprob
