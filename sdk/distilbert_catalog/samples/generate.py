"""Generate the bundled SQuAD v2 sample (project-authored, fully synthetic).

Usage::

    python -m distilbert_catalog.samples.generate [--out-dir DIR]

Writes ``squad_v2/{train,validation,test}.jsonl`` (SQuAD v2 schema) under DIR, which defaults to
this package directory. Output is deterministic (seeded ``random.Random``), so re-running
reproduces the committed files byte for byte.

The emotion sample (``emotion/{train,validation,test}.jsonl`` + ``labels.json``, dair-ai/emotion
schema) is not generated: its rows are hand-written, varied sentences that a model has to
understand rather than match by keyword, and the committed files are its source of truth.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import string
from pathlib import Path

from .markup import write_jsonl

SQUAD_SEED = 20240502
SPLITS = ("train", "validation", "test")

# ----------------------------------------------------------------------------- squad v2
FIRST = ("Mara Ilse Tova Nadia Signe Yara Petra Leona Ayla Brisa Odile Rhea Saskia Wren Liesl "
         "Anouk Talia Imke Zuri Esme Bram Tobin Caspar Idris Joren Lucan Matteo Niklas Oskar "
         "Rafe Soren Teodor Ulric Vidar Anselm Dario Emil Hakon Iver Kasimir").split()
LAST = ("Okafor Vandermeer Quell Arvidsen Halloway Brennick Castellane Dunmore Everly Falkner "
        "Grieve Hartwell Ingersoll Jarrow Kettering Lindqvist Marchetti Norwood Ostrander "
        "Pellham Quarrie Rasmussen Strand Thorne Underhill Valcourt Whitlow Yardley Zell "
        "Ashgrove Blackwood Corrigan Delacroix Emberley Fairweather Greaves").split()
CITY_A = "Lind Var Dov Ash Kel Mor Tre Bel Quar Sten Orr Hal Fen Gry Ulm Pell Sorn Vest".split()
CITY_B = "holm ska ere wick mouth ford avik stad burg ton vale port".split()
CO_A = ("Verity Amberline Halcyon Corvid Lumen Tessellate Bramble Kestrel Orison Pallas Quillon "
        "Sable Tidewater Umbra Vantor Wrenfield Zephyr Cobalt Ferrous Gilded Ironleaf Juniper "
        "Marlow Nettlefield Ostara Pinecrest Redwing Silverlake Thistle Upland Vireo Windrose").split()
CO_B = ("Labs Works Foods Logistics Textiles Robotics Press Shipping Instruments Brewing Mills "
        "Systems Optics Ceramics Dairy Motors Glassworks Pharma Outfitters Furniture").split()
OCCUPATIONS = ["glassblower", "cartographer", "marine biologist", "software engineer",
               "pastry chef", "structural engineer", "translator", "beekeeper", "violin maker",
               "data analyst", "nurse", "architect", "botanist", "furniture designer",
               "air traffic controller", "watchmaker", "geologist", "librarian", "radio producer",
               "veterinarian", "electrician", "illustrator"]
SUBJECTS = ["chemistry", "medieval history", "mechanical engineering", "linguistics",
            "mathematics", "economics", "marine ecology", "philosophy", "architecture",
            "music theory", "statistics", "agriculture", "astronomy", "graphic design"]
HOBBIES = ["sailing", "rock climbing", "chess", "birdwatching", "pottery", "long-distance running",
           "amateur astronomy", "baking bread", "playing the cello", "gardening", "woodcarving"]
PRODUCTS = ["optical sensors", "canned soups", "cargo drones", "wool blankets", "weather radios",
            "ceramic tiles", "bicycle frames", "printed maps", "surgical gloves", "craft beer"]
KNOWN_FOR = ["lighthouse", "salt marshes", "clock tower", "annual kite festival", "stone bridges",
             "herring market", "botanical garden", "copper mines", "hot springs", "old observatory"]
REGIONS = ["northern coast", "eastern plains", "banks of a wide river", "edge of a pine forest",
           "shore of a cold lake", "southern hills"]

# Paragraph sentence groups: (group, optional?, [phrasings]); slots name entity attributes.
PERSON = [
    ("born", False, ["{name} was born in {birth_city} in {birth_year}.",
                     "Born in {birth_city} in {birth_year}, {name} grew up near the harbour."]),
    ("job", False, ["{Pron} works as {art} {occupation} at {company}.",
                    "Today {pron} is employed as {art} {occupation} at {company}."]),
    ("tenure", True, ["{Pron} has worked at {company} since {start_year}."]),
    ("home", True, ["{Pron} lives in {home_city} with {pos} two cats.",
                    "These days {pron} lives in {home_city}."]),
    ("study", True, ["{Pron} studied {subject} at the {uni}.",
                     "At the {uni}, {pron} earned a degree in {subject}."]),
    ("hobby", True, ["In {pos} spare time, {pron} enjoys {hobby}."]),
]
COMPANY = [
    ("found", False, ["{name} was founded in {found_year} and is headquartered in {hq_city}.",
                      "Founded in {found_year}, {name} has its headquarters in {hq_city}."]),
    ("product", True, ["The company makes {product} for customers across the region."]),
]
CITY = [
    ("where", False, ["{name} is a small town on the {region}."]),
    ("pop", False, ["It has a population of about {population} people."]),
    ("known", True, ["Visitors come to {name} mainly for its {known_for}."]),
]
QUESTIONS = {
    "birth_city": ["Where was {name} born?", "In which city was {name} born?",
                   "What is the birthplace of {name}?"],
    "birth_year": ["When was {name} born?", "In what year was {name} born?"],
    "occupation": ["What does {name} work as?", "What is the occupation of {name}?"],
    "company": ["Where does {name} work?", "Which company employs {name}?"],
    "start_year": ["Since when has {name} worked at {company}?"],
    "home_city": ["Where does {name} live?", "In which city does {name} live now?"],
    "subject": ["What did {name} study?", "What is {name}'s degree in?"],
    "uni": ["Where did {name} study?", "Which university did {name} attend?"],
    "hobby": ["What does {name} enjoy in spare time?", "What is {name}'s favourite pastime?"],
    "found_year": ["When was {name} founded?", "In what year was {name} established?"],
    "hq_city": ["Where is {name} headquartered?", "In which city is {name} based?"],
    "product": ["What does {name} make?", "What products does {name} sell?"],
    "population": ["What is the population of {name}?", "How many people live in {name}?"],
    "known_for": ["What is {name} known for?", "What do visitors come to {name} for?"],
    "region": ["Where is {name} located?"],
}
# Questions per split. With 400 training questions MiniLM-L6 stalled at test F1 48 after ~3
# epochs; with 1,200 the docs/question-answering.md recipe (3 epochs) reaches test F1 69.
SQUAD_TARGET = {"train": 1200, "validation": 60, "test": 80}


def fill(template: str, values: dict) -> tuple[str, dict[str, tuple[int, str]]]:
    """Format ``template``; also return each slot's (offset, value) in the result."""
    out, spans, pos = [], {}, 0
    for literal, field, _, _ in string.Formatter().parse(template):
        out.append(literal)
        pos += len(literal)
        if field is not None:
            val = str(values[field])
            spans.setdefault(field, (pos, val))
            out.append(val)
            pos += len(val)
    return "".join(out), spans


class World:
    """Draws invented entities; person and company names are never reused."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.names = [f"{first} {last}" for first in FIRST for last in LAST]
        self.cos = [f"{a} {b}" for a in CO_A for b in CO_B]
        self.all_cos = self.cos[:]
        self.cities = [a + b for a in CITY_A for b in CITY_B]
        rng.shuffle(self.names)
        rng.shuffle(self.cos)

    def company(self) -> dict:
        r = self.rng
        return {"kind": "company", "name": self.cos.pop(), "found_year": r.randint(1880, 1960),
                "hq_city": r.choice(self.cities), "product": r.choice(PRODUCTS)}

    def person(self, company: str | None = None) -> dict:
        r, name = self.rng, self.names.pop()
        she = FIRST.index(name.split()[0]) < len(FIRST) // 2
        birth = r.randint(1940, 2000)
        occ = r.choice(OCCUPATIONS)
        c1, c2, c3 = r.sample(self.cities, 3)
        return {"kind": "person", "name": name, "birth_city": c1, "birth_year": birth,
                "occupation": occ, "art": "an" if occ[0] in "aeiou" else "a",
                "company": company or r.choice(self.all_cos),
                "start_year": r.randint(birth + 22, 2023),
                "home_city": c2, "subject": r.choice(SUBJECTS), "uni": f"University of {c3}",
                "hobby": r.choice(HOBBIES), "Pron": "She" if she else "He",
                "pron": "she" if she else "he", "pos": "her" if she else "his"}

    def city(self) -> dict:
        r = self.rng
        return {"kind": "city", "name": r.choice(self.cities), "region": r.choice(REGIONS),
                "population": f"{r.randint(3, 95)},{r.randint(0, 9)}00",
                "known_for": r.choice(KNOWN_FOR)}


def paragraph(rng: random.Random, entity: dict):
    """Return (text, {attr: (offset, value)}, [omitted attrs])."""
    groups = {"person": PERSON, "company": COMPANY, "city": CITY}[entity["kind"]]
    text, spans, missing = "", {}, []
    for _, optional, phrasings in groups:
        tmpl = rng.choice(phrasings)
        attrs = [f for _, f, _, _ in string.Formatter().parse(tmpl) if f]
        if optional and rng.random() < 0.4:
            missing += [a for a in attrs if a in QUESTIONS and a != "company"]
            continue
        sent, sp = fill(tmpl, entity)
        text += (" " if text else "")
        for attr, (off, val) in sp.items():
            if attr in QUESTIONS:
                spans.setdefault(attr, (len(text) + off, val))
        text += sent
    return text, spans, missing


def make_context(rng: random.Random, world: World, long: bool):
    main_co = world.company()
    main = world.person(main_co["name"])
    core = [main, main_co] + ([world.person(main_co["name"])] if rng.random() < 0.3 else [])
    paras = [(ent, *paragraph(rng, ent)) for ent in core]
    if long:  # pad with paragraphs about other entities, main text first or last
        fillers, names = [], {e["name"] for e in core}
        while sum(len(p[1].split()) for p in paras + fillers) < 500:
            ent = rng.choice([world.person, world.company, world.city])()
            if ent["name"] not in names:
                names.add(ent["name"])
                fillers.append((ent, *paragraph(rng, ent)))
        paras = fillers + paras if rng.random() < 0.5 else paras + fillers
    answers, missing, offset = [], [], 0
    for ent, text, spans, miss in paras:
        answers += [(ent, a, offset + o, v) for a, (o, v) in spans.items()]
        missing += [(ent, a) for a in miss]
        offset += len(text) + 1
    return main["name"], " ".join(p[1] for p in paras), answers, missing


def ask(rng: random.Random, ent: dict, attr: str) -> str:
    return rng.choice(QUESTIONS[attr]).format(**ent)


def squad_rows(rng: random.Random) -> dict[str, list[dict]]:
    world, splits, n_ctx = World(rng), {}, 0
    for split in SPLITS:
        rows = []
        while len(rows) < SQUAD_TARGET[split]:
            long = n_ctx % 10 == 3
            n_ctx += 1
            title, context, answers, missing = make_context(rng, world, long)
            n_q = 8 if long else rng.choice([3, 4, 4, 5])
            n_unans = 2 if long else 1
            if long:  # favour the last paragraphs so some answers sit deep in the context
                answers.sort(key=lambda a: -a[2])
                pool = answers[:6] + rng.sample(answers[6:], min(len(answers) - 6, 6))
            else:
                pool = answers[:]
            qs, seen = [], set()
            for ent, attr, start, val in rng.sample(pool, len(pool)):
                q = ask(rng, ent, attr)
                if len(qs) < n_q - n_unans and q not in seen:
                    assert context[start:start + len(val)] == val
                    qs.append((q, {"text": [val], "answer_start": [start]}))
                    seen.add(q)
            for _ in range(n_unans):
                if missing and rng.random() < 0.5:
                    ent, attr = missing.pop(rng.randrange(len(missing)))
                else:  # a person or company that does not appear in this context
                    ent = world.person() if rng.random() < 0.7 else world.company()
                    while ent["name"] in context:
                        ent = world.company()
                    attr = rng.choice([a for a in QUESTIONS if a in ent and a != "name"])
                    assert ent["name"] not in context
                qs.append((ask(rng, ent, attr), {"text": [], "answer_start": []}))
            for qi, (question, ans) in enumerate(qs):
                qid = hashlib.sha1(f"{split}/{n_ctx}/{qi}".encode()).hexdigest()[:24]
                rows.append({"id": qid, "title": title, "context": context,
                             "question": question, "answers": ans})
        splits[split] = rows
    return splits


# ----------------------------------------------------------------------------- io
def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, rows)


def main(out_dir: str | Path | None = None) -> dict[str, int]:
    """Write the SQuAD v2 sample under ``out_dir`` (default: this package dir); return row counts."""
    out = Path(out_dir) if out_dir is not None else Path(__file__).resolve().parent
    counts = {}
    for split, split_rows in squad_rows(random.Random(SQUAD_SEED)).items():
        _write_jsonl(out / "squad_v2" / f"{split}.jsonl", split_rows)
        counts[f"squad_v2/{split}"] = len(split_rows)
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=None, help="output directory (default: package dir)")
    for key, n in main(parser.parse_args().out_dir).items():
        print(f"{key}: {n} rows")
