"""distilbert-base-multilingual-cased's paths on a tiny cased multilingual fixture: the tokenizer is
never lower-cased or accent-stripped; QA spans and NER offsets are exact on accents, non-Latin
scripts, right-to-left text and scripts written without spaces; MLQA-style answer scoring."""

import json

import numpy as np
import pytest

from distilbert_catalog.tasks.question_answering import engine as qa_engine
from distilbert_catalog.tasks.question_answering import mlqa, squad
from distilbert_catalog.tasks.token_classification import engine as ner_engine

#: (question, context, answer): the answer occurs once in the context
QA_CASES = [
    ("Qui a écrit Germinal ?", "Émile Zola a écrit Germinal en 1885 à Médan.", "Émile Zola"),
    ("¿Dónde nació Zoë Saldaña?", "Zoë Saldaña nació en Passaic, Nueva Jersey.", "Passaic"),
    ("Где находится Эрмитаж?", "Эрмитаж находится в Санкт-Петербурге на Неве.", "Санкт-Петербурге"),
    ("ما هي عاصمة مصر؟", "عاصمة مصر هي القاهرة وهي أكبر مدنها.", "القاهرة"),
    ("מה בירת ישראל?", "ירושלים היא העיר הגדולה בישראל.", "ירושלים"),
    ("北京大学在哪里？", "北京大学位于中国北京市海淀区。", "北京大学"),
    # kana runs are one pre-token for BERT tokenizers (mBERT's too): an answer must start and end at
    # kanji or at a kana run's edges
    ("東京タワーはどこですか？", "東京タワーは港区にあります。", "港区"),
    ("เมืองหลวงของไทยคือ?", "เมืองหลวงของไทยคือ กรุงเทพ ซึ่งเป็นเมืองใหญ่", "กรุงเทพ"),
    ("भारत की राजधानी क्या है?", "भारत की राजधानी नई दिल्ली है।", "नई दिल्ली"),
]
#: (text, entity): one PER/LOC entity per text
NER_CASES = [
    ("Hier, François Hollande était à Montréal.", "François Hollande"),
    ("Встреча с Владимиром Набоковым прошла тихо.", "Владимиром Набоковым"),
    ("زار محمد صلاح مدينة ليفربول.", "محمد صلاح"),
    ("昨天李小龍在香港拍电影。", "李小龍"),
    ("Der Bürgermeister von Düsseldorf sprach lange.", "Düsseldorf"),
]


@pytest.fixture(scope="module")
def cased_model(tmp_path_factory):
    from distilbert_catalog.tiny import build_tiny_model

    texts = [t for q, c, a in QA_CASES for t in (q, c)] + [t for t, _ in NER_CASES]
    return build_tiny_model(tmp_path_factory.mktemp("ml") / "tiny-multilingual-cased",
                            texts=texts * 3, vocab_size=600, cased=True)


@pytest.fixture(scope="module")
def tokenizer(cased_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(cased_model)


def test_cased_tokenizer_is_never_lower_cased_or_accent_stripped(cased_model, tmp_path):
    import distilbert_catalog as dc

    packaged = dc.package_model(cased_model, tmp_path / "mlflow", task="fill-mask")
    for predictor in (dc.load_model(cased_model), dc.load_model(packaged)):
        pieces = predictor.tokenizer.tokenize("Émile Zola à Médan")
        assert pieces[0].startswith("É") and "à" in pieces, pieces
        assert "".join(p.removeprefix("##") for p in pieces) == "ÉmileZolaàMédan"


def _char_span(context: str, answer: str) -> tuple[int, int]:
    start = context.index(answer)
    return start, start + len(answer)


@pytest.mark.parametrize("question, context, answer", QA_CASES)
def test_qa_span_is_exact(tokenizer, question, context, answer):
    params = qa_engine.QAParams(max_seq_length=48, doc_stride=16, max_query_length=16)
    windows = qa_engine.encode(tokenizer, [question], [context], params)
    gold = _char_span(context, answer)
    starts, ends = [], []
    for offsets in windows.context_offsets:
        start = np.zeros(len(offsets))
        end = np.zeros(len(offsets))
        hit_s = [i for i, o in enumerate(offsets) if o and o[0] == gold[0]]
        hit_e = [i for i, o in enumerate(offsets) if o and o[1] == gold[1]]
        start[hit_s] = end[hit_e] = 12.0
        starts.append(start)
        ends.append(end)
    assert any(s.max() > 0 for s in starts) and any(e.max() > 0 for e in ends), \
        "the answer's edges are not token edges"
    best = qa_engine.postprocess(starts, ends, windows, [context], params)[0].answers[0]
    assert (best["answer"], best["start"], best["end"]) == (answer, *gold)


@pytest.mark.parametrize("text, entity", NER_CASES)
def test_ner_offsets_are_exact(tokenizer, text, entity):
    labels = {0: "O", 1: "B-PER", 2: "I-PER"}
    enc = ner_engine.encode_texts(tokenizer, [text])[0]
    start, end = _char_span(text, entity)
    scores = np.zeros((len(enc), 3))
    inside = [i for i, (s, e) in enumerate(enc.offsets) if s >= start and e <= end]
    assert inside, "no token inside the entity"
    scores[:, 0] = 1.0
    scores[inside, 0] = 0.0
    scores[inside[0], 1] = 1.0
    scores[inside[1:], 2] = 1.0
    for strategy in ("simple", "first", "max"):
        found = ner_engine.entities(enc, scores, labels, strategy)
        assert [(e["word"], e["start"], e["end"]) for e in found] == [(entity, start, end)]


def test_served_answers_are_slices_of_the_input(cased_model, tmp_path):
    """Through the Predictor (random heads): whatever is predicted is an exact slice."""
    import distilbert_catalog as dc
    from distilbert_catalog.tiny import with_task_head

    qa = dc.load_model(with_task_head(cased_model, "question-answering", tmp_path / "qa"))
    answers = qa.predict([{"question": q, "context": c} for q, c, _ in QA_CASES])
    for answer, (_, context, _) in zip(answers, QA_CASES):
        assert context[answer["start"]:answer["end"]] == answer["answer"]
    ner = dc.load_model(with_task_head(cased_model, "token-classification", tmp_path / "ner"))
    for found, (text, _) in zip(ner.predict([{"input_string": t} for t, _ in NER_CASES]),
                                NER_CASES):
        assert all(text[e["start"]:e["end"]] == e["word"] for e in found)


# --------------------------------------------------------------------------- MLQA scoring

def test_mlqa_f1_on_a_chinese_answer_with_one_wrong_character():
    f1 = mlqa.f1_score(["北京大学"], "北京大字", "zh")
    assert 0 < f1 < 1 and f1 == pytest.approx(0.75)  # 3 of 4 characters, both ways
    assert squad.f1_score(["北京大学"], "北京大字") == 0.0  # whitespace F1: one token, wrong
    assert mlqa.f1_score(["北京大学"], "北京大学", "zh") == 1.0


@pytest.mark.parametrize("language, gold, pred, exact, f1", [
    ("es", "la Universidad de Salamanca", "Universidad de Salamanca.", 1, 1.0),
    ("de", "die Deutsche Bahn", "Deutsche Bahn", 1, 1.0),
    ("en", "the Eiffel Tower", "Eiffel Tower", 1, 1.0),
    ("ar", "القاهرة", "قاهرة", 1, 1.0),  # the article al- is a prefix
    ("ja", "東京タワー", "東京タワーです", 0, 10 / 12),  # 5 of 7 characters, all 5 of gold
    ("hi", "नई दिल्ली", "दिल्ली", 0, 2 / 3),
    ("zh", "《红楼梦》", "红楼梦", 1, 1.0),  # CJK punctuation is punctuation
    ("fr", "Émile Zola", "émile zola", 1, 1.0),  # scoring compares case-folded, accents kept
    ("fr", "Émile Zola", "Emile Zola", 0, 0.5),
])
def test_mlqa_normalisation(language, gold, pred, exact, f1):
    assert mlqa.exact_score([gold], pred, language) == exact
    assert mlqa.f1_score([gold], pred, language) == pytest.approx(f1)


def test_qa_evaluation_reports_mlqa_scores_for_a_language(tmp_path):
    import distilbert_catalog as dc

    rows = [{"id": "q1", "title": "t", "question": "北京大学在哪里？",
             "context": "北京大学位于北京市海淀区。",
             "answers": {"text": ["北京市海淀区"], "answer_start": [6]}},
            {"id": "q2", "title": "t", "question": "谁?", "context": "李小龍在香港。",
             "answers": {"text": ["李小龍"], "answer_start": [0]}}]
    data = tmp_path / "data"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                             for r in rows))
    preds = tmp_path / "predictions.json"
    preds.write_text(json.dumps({"q1": "北京市海淀", "q2": "李小龍"}, ensure_ascii=False))
    record = dc.evaluate("question-answering", output_dir=tmp_path / "eval", test_data=str(data),
                         predictions_file=str(preds), language="zh")
    m = record["metrics"]
    assert m["f1"] == pytest.approx(50.0)  # SQuAD: q1 is one wrong "word"
    assert m["mlqa_exact"] == pytest.approx(50.0)
    assert m["mlqa_f1"] == pytest.approx(100 * (2 * 5 / 6 * 1 / (5 / 6 + 1) + 1) / 2)
