"""Generate a realistic scraped corpus of a given size, deterministically (our own generator).

Pages are JSON lines records (url, title, published, text) in French and English: a title,
site chrome at the top and bottom (newsletter, share bar, credits, cookie banner...),
5–20 paragraphs of prose built from common words, the odd mojibake line, and about 20% of
pages that are near-duplicates of an earlier page (a few words edited, a paragraph dropped
or added), as syndicated news is.

    python bench/corpus_gen.py OUT_DIR --mb 200 [--files 40] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

FR_WORDS = (
    "le la les un une des du de et à en dans pour sur avec par au aux ce cette ces son sa ses leur leurs "
    "qui que dont où mais ou donc car ne pas plus très aussi encore déjà toujours jamais bien "
    "ville conseil maire projet gouvernement ministre président habitants région quartier école "
    "travaux budget année semaine mois jour soir matin rapport enquête réunion accord décision "
    "économie entreprise emploi salariés syndicat grève transport tramway gare route pont "
    "santé hôpital médecin patients élèves enseignants parents famille association club équipe "
    "match saison festival concert musée exposition livre film culture histoire patrimoine "
    "a été sont était ont fait dit annoncé expliqué estimé indiqué précisé déclaré assuré promis "
    "nouveau nouvelle grand grande petit petite premier première dernier dernière public publique "
    "local locale national nationale important importante possible prochain prochaine ancien "
    "selon après avant pendant depuis contre sans sous entre vers chez lors afin malgré "
    "millions euros pourcent habitants heures minutes kilomètres mètres places logements"
).split()
EN_WORDS = (
    "the a an of and to in for on with by at from as that which who where but or so not more very also "
    "still already always never well city council mayor project government minister president residents "
    "region district school works budget year week month day evening morning report inquiry meeting "
    "agreement decision economy company jobs workers union strike transport tram station road bridge "
    "health hospital doctor patients pupils teachers parents family club team match season festival "
    "concert museum exhibition book film culture history heritage has been are was have made said "
    "announced explained estimated indicated added stated promised new large small first last public "
    "local national important possible next former according after before during since against without "
    "under between towards despite millions pounds percent hours minutes miles homes places people"
).split()

CHROME = {
    "fr": [
        "Je m'abonne à la newsletter", "Partager sur Facebook Twitter", "Comment (0)", "3 min de lecture",
        "Crédit : Jean DUPONT / AFP", "Nous utilisons des cookies pour améliorer votre expérience. Accepter",
        "Je crée mon compte", "Plus récent Plus ancien", "![]()", "© 2024 Le Journal – Tous droits réservés",
        "Ne manquez rien de l'actualité en activant les notifications sur votre navigateur", "Publicité",
    ],
    "en": [
        "Subscribe to our newsletter", "Share on Facebook Twitter", "5 comments", "4 min read",
        "Photo: Reuters", "We use cookies to improve your experience. Accept all", "Sign in / Create an account",
        "Advertisement", "![]()", "© 2024 The Daily Courier. All rights reserved.", "Read more", "Related articles",
    ],
}
# Content words: the common words above plus a large synthetic vocabulary made of each
# language's typical syllables, so unrelated paragraphs share few character 5-grams (as real
# text does) while still reading as French or English to a language detector.
SYLLABLES = {
    "fr": "ba be bi bo bu ca ce ci co cou da de di do dou fa fe fi fo ga ge gi go la le li lo lou ma me mi mo mou "
          "na ne ni no pa pe pi po pou ra re ri ro rou sa se si so sou ta te ti to tou va ve vi vo ment tion eau "
          "ai ei oi an en in on un eur ier ette elle ise ance ence age ique ois".split(),
    "en": "ba be bi bo bu ca co cu da de di do du fa fe fi fo ga ge go la le li lo lu ma me mi mo mu na ne ni no "
          "pa pe pi po ra re ri ro sa se si so ta te ti to th sh ch wh ing ed er est ly ness ment tion ful "
          "ow ea ee oo ay ight ough ck".split(),
}


def _vocabulary(lang: str, common: list[str], size: int, seed: int) -> list[str]:
    rng = random.Random(f"{lang}-{seed}")
    made = {"".join(rng.choice(SYLLABLES[lang]) for _ in range(rng.randint(2, 4))) for _ in range(size)}
    return common + sorted(made)


MOJIBAKE = "Le prÃ©sident a dÃ©clarÃ© que lâ€™accord serait signÃ© avant lâ€™Ã©tÃ©."


def _sentence(rng: random.Random, words: list[str], common: list[str]) -> str:
    n = rng.randint(8, 24)
    # about half function words, as in running text
    body = " ".join(rng.choice(common) if rng.random() < 0.5 else rng.choice(words) for _ in range(n))
    if rng.random() < 0.3:
        cut = rng.randint(3, n - 2)
        parts = body.split(" ")
        body = " ".join(parts[:cut]) + ", " + " ".join(parts[cut:])
    return body[0].upper() + body[1:] + rng.choice([".", ".", ".", " !", " ?"])


def _paragraph(rng: random.Random, words: list[str], common: list[str]) -> str:
    return " ".join(_sentence(rng, words, common) for _ in range(rng.randint(2, 6)))


_VOCAB = {"fr": _vocabulary("fr", FR_WORDS, 20000, 7), "en": _vocabulary("en", EN_WORDS, 20000, 7)}
_COMMON = {"fr": FR_WORDS[:60], "en": EN_WORDS[:60]}


def _page(rng: random.Random, lang: str) -> dict:
    words, common = _VOCAB[lang], _COMMON[lang]
    chrome = CHROME[lang]
    title = _sentence(rng, words, common).rstrip(".!? ")
    lines = rng.sample(chrome, 3) + [title] + [_paragraph(rng, words, common) for _ in range(rng.randint(5, 20))]
    if rng.random() < 0.05:
        lines.insert(5, MOJIBAKE)
    lines += rng.sample(chrome, 4)
    return {"title": title, "lang": lang, "lines": lines}


def _near_copy(rng: random.Random, page: dict) -> dict:
    words, common = _VOCAB[page["lang"]], _COMMON[page["lang"]]
    lines = list(page["lines"])
    for _ in range(rng.randint(1, 3)):  # edit a few words in a few paragraphs
        i = rng.randrange(len(lines))
        tokens = lines[i].split(" ")
        if len(tokens) > 10:
            tokens[rng.randrange(len(tokens))] = rng.choice(words)
            lines[i] = " ".join(tokens)
    if rng.random() < 0.5 and len(lines) > 8:
        del lines[rng.randrange(4, len(lines))]
    else:
        lines.insert(rng.randrange(4, len(lines)), _paragraph(rng, words, common))
    return {**page, "lines": lines}


def generate(out_dir: Path, mb: float, files: int = 40, seed: int = 7, dup_share: float = 0.2) -> dict:
    """Write ``files`` JSON-lines files totalling about ``mb`` megabytes; return what was written."""
    rng = random.Random(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = int(mb * 1_000_000)
    per_file = max(1, target // files)
    written = pages = near = 0
    recent: list[dict] = []
    for f in range(files):
        path = out_dir / f"crawl-{f:04d}.jsonl"
        size = 0
        with path.open("w", encoding="utf-8") as fh:
            while size < per_file and written < target:
                if recent and rng.random() < dup_share:
                    page = _near_copy(rng, rng.choice(recent))
                    near += 1
                else:
                    page = _page(rng, "fr" if rng.random() < 0.6 else "en")
                    recent.append(page)
                    if len(recent) > 500:
                        recent.pop(rng.randrange(len(recent)))
                record = {
                    "url": f"https://news.example/{page['lang']}/{pages}",
                    "title": page["title"],
                    "published": f"2024-03-{1 + pages % 28:02d}",
                    "text": "\n".join(page["lines"]),
                }
                line = json.dumps(record, ensure_ascii=False) + "\n"
                fh.write(line)
                n = len(line.encode("utf-8"))
                size += n
                written += n
                pages += 1
    return {"bytes": written, "pages": pages, "near_duplicate_pages": near, "files": files}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(generate(args.out_dir, args.mb, args.files, args.seed)))


if __name__ == "__main__":
    main()
