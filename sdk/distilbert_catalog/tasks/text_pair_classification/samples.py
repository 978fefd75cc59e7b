"""Generate the bundled sentence-pair sample (project-written, MNLI schema).

Usage::

    python -m distilbert_catalog.tasks.text_pair_classification.samples [--out-dir DIR]

Writes ``nli_pairs/{train,validation,test}.jsonl`` (``sentence1``, ``sentence2``, ``label`` in
entailment / neutral / contradiction, ``topic``) under DIR, by default the package's ``samples/``
folder. Deterministic (seeded ``random.Random``): re-running reproduces the committed files.

Every scenario (a person, an action on an object, a place and a time, from one topic) gives six
pairs: a premise stating the action and a premise denying it (naming what was done instead), each
with three hypotheses of the same shapes - the action, its denial, and the action on another
object of the same kind (neutral: the premise says nothing of it). The same hypothesis sentence
is entailed by one premise and contradicted by the other, so a model that reads only
``sentence2`` is left at chance; premises, too, carry all three labels. Splits are by topic:
validation and test use topics (verbs, objects, places) that training never sees.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 20261202
LABELS = ("entailment", "neutral", "contradiction")

#: topic -> places, and actions (past tense, base form, objects of that action)
TOPICS: dict[str, tuple[list[str], list[tuple[str, str, list[str]]]]] = {
    "market": (["at the market", "at the corner shop", "at the farmers' stall"], [
        ("bought", "buy", ["apples", "a loaf of bread", "fresh fish", "two melons",
                           "a bag of rice", "some goat cheese", "a jar of honey"]),
        ("sold", "sell", ["old books", "hand-made soap", "spring onions", "a wooden stool",
                          "jars of jam", "knitted scarves"])]),
    "kitchen": (["in the kitchen", "at the family home", "in the bakery"], [
        ("baked", "bake", ["a lemon cake", "rye bread", "a dozen muffins", "an apple pie",
                           "oat cookies", "a pizza"]),
        ("cooked", "cook", ["a vegetable soup", "rice and beans", "a mushroom risotto",
                            "pancakes", "a fish curry", "a pot of chili"])]),
    "garden": (["in the garden", "behind the cottage", "in the allotment"], [
        ("planted", "plant", ["tomatoes", "a cherry tree", "tulip bulbs", "basil",
                              "potatoes", "a row of sunflowers"]),
        ("watered", "water", ["the roses", "the lawn", "the lemon tree", "the herb bed",
                              "the hanging baskets", "the seedlings"])]),
    "sports": (["at the stadium", "in the sports hall", "at the local club"], [
        ("played", "play", ["tennis", "a chess match", "basketball", "volleyball",
                            "table tennis", "a round of golf"]),
        ("won", "win", ["the race", "the final", "a silver medal", "the tournament",
                        "the long jump", "the relay"])]),
    "music": (["at the concert hall", "in the church", "at the music school"], [
        ("played", "play", ["the violin", "a piano sonata", "the drums", "an old folk song",
                            "the cello", "a jazz tune"]),
        ("sang", "sing", ["a lullaby", "the national anthem", "an opera aria", "a sea shanty",
                          "a birthday song", "a hymn"])]),
    "office": (["at the office", "in the meeting room", "at the bank"], [
        ("wrote", "write", ["a report", "the budget plan", "an email to the client",
                            "the meeting notes", "a job advert", "a press release"]),
        ("signed", "sign", ["the contract", "the lease", "a cheque", "the delivery form",
                            "the purchase order", "the visitor book"])]),
    "travel": (["at the station", "at the airport", "at the travel agency"], [
        ("booked", "book", ["a train ticket", "a hotel room", "a flight to Lisbon",
                            "a rental car", "a ferry crossing", "a guided tour"]),
        ("packed", "pack", ["a suitcase", "warm clothes", "a camera", "a sleeping bag",
                            "a map of the coast", "a first-aid kit"])]),
    "school": (["at school", "in the classroom", "at the study centre"], [
        ("solved", "solve", ["the math problem", "a crossword", "the riddle",
                             "the equation", "a logic puzzle", "the chess problem"]),
        ("studied", "study", ["French verbs", "the periodic table", "world history",
                              "the poem", "algebra", "the map of Europe"])]),
    "repairs": (["in the garage", "at the workshop", "at home"], [
        ("fixed", "fix", ["the leaking tap", "a flat tyre", "the broken chair",
                          "the kitchen light", "the squeaky gate", "the washing machine"]),
        ("painted", "paint", ["the fence", "the front door", "the bedroom walls",
                              "the old bench", "the garden shed", "the window frames"])]),
    "pets": (["at the vet", "in the park", "at the animal shelter"], [
        ("fed", "feed", ["the cat", "the goldfish", "the puppy", "the parrot", "the rabbits",
                         "the pony"]),
        ("walked", "walk", ["the dog", "the neighbour's terrier", "two greyhounds",
                            "the old beagle", "the shelter dogs", "the poodle"])]),
    # --- validation topics ---------------------------------------------------------------
    "library": (["at the library", "in the reading room", "at the bookshop"], [
        ("borrowed", "borrow", ["a novel", "three cookbooks", "a travel guide",
                                "a book of poems", "an atlas", "a biography"]),
        ("returned", "return", ["the overdue magazines", "a history book", "the audiobook",
                                "two comics", "the dictionary", "a film on DVD"])]),
    "art": (["in the studio", "at the art class", "by the river"], [
        ("drew", "draw", ["a portrait", "a map of the town", "a sketch of the harbour",
                          "a cartoon", "a horse", "the cathedral"]),
        ("framed", "frame", ["a watercolour", "the family photo", "an old poster",
                             "a pressed flower", "the certificate", "a postcard"])]),
    # --- test topics ---------------------------------------------------------------------
    "laboratory": (["in the laboratory", "at the research station", "in the clean room"], [
        ("measured", "measure", ["the water temperature", "the length of the beam",
                                 "the soil acidity", "the air pressure", "the salt content",
                                 "the voltage"]),
        ("tested", "test", ["the new vaccine", "a soil sample", "the smoke alarm",
                            "the battery", "the brake fluid", "a blood sample"])]),
    "cinema": (["at the cinema", "at the film festival", "in the screening room"], [
        ("watched", "watch", ["a comedy", "a documentary about whales", "a silent film",
                              "the new thriller", "a cartoon", "a western"]),
        ("filmed", "film", ["a short interview", "the street parade", "a music video",
                            "the opening scene", "a wedding", "the sunset"])]),
}
SPLIT_TOPICS = {
    "train": ["market", "kitchen", "garden", "sports", "music", "office", "travel", "school",
              "repairs", "pets"],
    "validation": ["library", "art"],
    "test": ["laboratory", "cinema"],
}
SCENARIOS = {"train": 6, "validation": 4, "test": 10}

WOMEN = ("Maria Amara Chen Ingrid Leila Nora Priya Sofia Yuki Zainab Hanna Rosa Mei Olga "
         "Fatima Greta").split()
MEN = ("Tomas Kofi Ravi Lars Omar Diego Jonas Hiro Mateo Samir Pavel Felix Arjun Emil Ken "
       "Bruno").split()
TIMES = ["this morning", "last night", "on Saturday", "yesterday afternoon", "on Monday",
         "before lunch", "last week", "after work"]
FILLERS = ["who had the day off", "who was in a hurry", "who had promised to help",
           "who was in a good mood", "who had just come back from holiday"]

POSITIVE = [
    "{S} {vp} {o} {place} {time}.",
    "{Time}, {S} {vp} {o} {place}.",
    "{Place}, {S} {vp} {o} {time}.",
    "{S}, {filler}, {vp} {o} {place}.",
    "{S} almost forgot, but {pron} {vp} {o} {place} {time}.",
]
NEGATIVE = [
    "{S} did not {vb} {o} {place} {time}; {pron} {vp} {o2} instead.",
    "{Time}, {S} {vp} {o2} {place} but did not {vb} {o}.",
    "{S} wanted to {vb} {o} {place} {time}, but in the end {pron} only {vp} {o2}.",
    "{Place}, {S} never {vp} {o}; {pron} {vp} {o2} {time}.",
]
AFFIRM = ["{S} {vp} {o}.", "{S} did {vb} {o}.", "It was {S} who {vp} {o}."]
DENY = ["{S} did not {vb} {o}.", "{S} never {vp} {o}.", "It is not true that {S} {vp} {o}."]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def scenario_pairs(rng: random.Random, topic: str) -> list[dict]:
    places, actions = TOPICS[topic]
    vp, vb, objects = rng.choice(actions)
    o, o2, o3 = rng.sample(objects, 3)
    woman = rng.random() < 0.5
    name = rng.choice(WOMEN if woman else MEN)
    place, time = rng.choice(places), rng.choice(TIMES)
    fill = {"S": name, "pron": "she" if woman else "he", "vp": vp, "vb": vb, "o": o, "o2": o2,
            "place": place, "Place": _cap(place), "time": time, "Time": _cap(time),
            "filler": rng.choice(FILLERS)}
    positive = rng.choice(POSITIVE).format(**fill)
    negative = rng.choice(NEGATIVE).format(**fill)
    affirm, deny = rng.choice(AFFIRM), rng.choice(DENY)
    said, denied = affirm.format(**fill), deny.format(**fill)
    other = {**fill, "o": o3}
    rows = [(positive, said, "entailment"), (positive, denied, "contradiction"),
            (positive, rng.choice(AFFIRM).format(**other), "neutral"),
            (negative, said, "contradiction"), (negative, denied, "entailment"),
            (negative, rng.choice(DENY).format(**other), "neutral")]
    return [{"sentence1": p, "sentence2": h, "label": label, "topic": topic}
            for p, h, label in rows]


def generate(out_dir: Path) -> dict[str, int]:
    rng = random.Random(SEED)
    counts = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, topics in SPLIT_TOPICS.items():
        rows, seen = [], set()
        for topic in topics:
            made = 0
            while made < SCENARIOS[split]:
                pairs = scenario_pairs(rng, topic)
                key = (pairs[0]["sentence1"], pairs[3]["sentence1"])
                if key in seen:
                    continue
                seen.add(key)
                rows += pairs
                made += 1
        rng.shuffle(rows)
        (out_dir / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        counts[split] = len(rows)
    (out_dir / "labels.json").write_text(json.dumps(list(LABELS)) + "\n")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path,
                        default=Path(__file__).resolve().parents[2] / "samples" / "nli_pairs")
    print(generate(parser.parse_args(argv).out_dir))


if __name__ == "__main__":
    main()
