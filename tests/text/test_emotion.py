"""The offline text emotion classifier: clear cases, negation, mixed languages, whisper, sentences."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from myna.errors import UnsupportedLanguageError
from myna.text.emotion import (
    LABELS,
    WHISPER_SCORE,
    classify,
    classify_pieces,
    classify_sentences,
    cut_sentences,
)
from myna.text.emotion.cues import lexicon
from myna.text.emotion.evaluate import evaluate, load_examples
from myna.text.emotion.features import detect_language
from myna.text.emotion.model import bundled_model
from myna.text.split import prepare_segments

EVAL_SET = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "emotion_eval.jsonl"

# Sentences written for these tests (neither training, development nor evaluation sentences).
CLEAR = {
    "en": {
        "neutral": "The printer on the second floor uses A4 paper.",
        "happy": "I'm so happy, we won the championship!",
        "sad": "I cried all night after my grandmother died.",
        "angry": "I'm furious, you ruined everything!",
        "surprised": "Wow, I can't believe it, you're here?",
        "fearful": "I'm terrified, someone is breaking into the house!",
        "calm": "Relax, take a deep breath, everything is going to be fine.",
    },
    "zh": {
        "neutral": "二楼的打印机使用A4纸。",
        "happy": "我们赢得了冠军，太开心了！",
        "sad": "奶奶去世以后，我哭了一整夜。",
        "angry": "你把一切都搞砸了，气死我了！",
        "surprised": "天哪，你居然来了？",
        "fearful": "好可怕，有人在撬我家的门，我好害怕！",
        "calm": "放松，深呼吸，一切都会好起来的。",
    },
    "ja": {
        "neutral": "二階のプリンターはA4の用紙を使います。",
        "happy": "優勝できて本当に嬉しい！",
        "sad": "祖母が亡くなって、一晩中泣いた。",
        "angry": "全部台無しにしやがって、本当に腹が立つ！",
        "surprised": "えっ、まさか本当に来てくれたの？",
        "fearful": "誰かが家に入ろうとしてる、怖い！",
        "calm": "大丈夫、深呼吸して、リラックスしてね。",
    },
}


@pytest.mark.parametrize(("lang", "label"), [(lang, label) for lang in CLEAR for label in CLEAR[lang]])
def test_clear_sentences_get_their_label(lang, label):
    guess = classify(CLEAR[lang][label], lang)
    assert guess.label == label, guess.scores
    assert guess.confidence == guess.scores[label] == max(guess.scores.values())


def test_scores_cover_every_label_and_sum_to_one():
    guess = classify("What a lovely morning!", "en")
    assert set(guess.scores) == set(LABELS)
    assert sum(guess.scores.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(("text", "lang", "not_label"), [
    ("I'm not happy with this at all.", "en", "happy"),
    ("我一点也不开心。", "zh", "happy"),
    ("全然楽しくない。", "ja", "happy"),
    ("I'm not scared of the dark.", "en", "fearful"),
    ("我不怕。", "zh", "fearful"),
    ("もう怖くないよ。", "ja", "fearful"),
])
def test_negation_turns_a_cue_around(text, lang, not_label):
    assert classify(text, lang).label != not_label


@pytest.mark.parametrize(("text", "lang"), [
    ("Don't worry, take your time.", "en"), ("别担心，慢慢来。", "zh"), ("心配しないで、ゆっくりでいいよ。", "ja"),
])
def test_reassurance_is_calm_not_fear(text, lang):
    assert classify(text, lang).label == "calm"


def test_negator_inside_a_word_does_not_negate():
    # 特别 holds 别 (don't): 特别怕 is "very afraid", not "don't be afraid"
    assert classify("我特别怕打雷。", "zh").label == "fearful"


@pytest.mark.parametrize(("text", "lang", "label"), [
    ("もう我慢できません！", "ja", "angry"),  # the polite form of a plain negative cue (我慢できない)
    ("もっと早く謝ればよかった。", "ja", "sad"),  # ～ばよかった is regret, not よかった (glad)
    ("早知道就不去了，真后悔。", "zh", "sad"),
    ("I couldn't be happier for you two!", "en", "happy"),  # a negated comparative that praises
    ("明日の最高気温は三十度です。", "ja", "neutral"),  # 最高 (the best) inside a weather word
    ("这个周末最高气温只有五度。", "zh", "neutral"),
])
def test_idioms_that_look_like_other_cues(text, lang, label):
    assert classify(text, lang).label == label


@pytest.mark.parametrize(("text", "lang", "label"), [
    ("这个 project 终于上线了，amazing！", "zh", "happy"),
    ("今天的 meeting 又被取消了，so sad。", "zh", "sad"),
    ("明日の presentation が怖い。", "ja", "fearful"),
    ("That ramen shop closed, 好可惜。", "en", "sad"),
])
def test_mixed_language_text_reads_every_script(text, lang, label):
    assert classify(text, lang).label == label


@pytest.mark.parametrize("text", ["", "   ", "...", "？！。", "!!!", "\n"])
def test_empty_or_punctuation_only_is_neutral(text):
    guess = classify(text, "en")
    assert (guess.label, guess.confidence) == ("neutral", 1.0)


@pytest.mark.parametrize(("text", "lang"), [
    ("(whispering) Over here.", "en"), ("Shhh, they'll hear us.", "en"), ("She whispered his name.", "en"),
    ("（小声）在这里。", "zh"), ("嘘，他们会听见的。", "zh"),
    ("しーっ、聞こえちゃうよ。", "ja"), ("彼女は耳元でささやいた。", "ja"),
])
def test_whisper_only_from_explicit_cues(text, lang):
    guess = classify(text, lang)
    assert (guess.label, guess.confidence) == ("whisper", WHISPER_SCORE)


@pytest.mark.parametrize(("text", "lang"), [
    ("The baby is asleep upstairs.", "en"), ("Don't whisper, speak up!", "en"), ("宝宝在楼上睡觉。", "zh"),
    ("嘘をつかないで。", "ja"),  # 嘘 is a lie in Japanese, a hush only in Chinese
])
def test_no_whisper_without_a_cue(text, lang):
    assert classify(text, lang).scores["whisper"] == 0.0


def test_same_input_same_scores_across_processes():
    code = ("import json; from myna.text.emotion import classify; "
            "print(json.dumps([classify(t, 'auto').scores for t in "
            "['我太高兴了！', 'Why did you do that?!', '怖くて眠れない。']]))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert runs[0] == runs[1]
    assert json.loads(runs[0])[0] == classify("我太高兴了！", "zh").scores


def test_auto_language_by_script():
    assert [detect_language(text) for text in ("今日は晴れ。", "今天晴天。", "Sunny today.", "東京")] == \
        ["ja", "zh", "en", "zh"]
    assert classify("やった、合格した！", "auto").label == "happy"


def test_unknown_language_is_refused():
    with pytest.raises(UnsupportedLanguageError):
        classify("hello", "fr")


def test_cut_sentences_keeps_numbers_abbreviations_and_quotes():
    text = 'Dr. Lee paid 3.5 dollars. "Run!" she shouted. 好的！真的吗？'
    assert cut_sentences(text) == ["Dr. Lee paid 3.5 dollars.", '"Run!" she shouted.', "好的！", "真的吗？"]
    assert cut_sentences("「逃げて！」と彼は叫んだ。静かになった。") == ["「逃げて！」と彼は叫んだ。", "静かになった。"]
    assert "".join(cut_sentences("一句话没有句号")) == "一句话没有句号"


def test_classify_sentences_labels_each_sentence():
    found = classify_sentences("We won the final! But our captain broke his leg and cried.", "en")
    assert [item.guess.label for item in found] == ["happy", "sad"]


def test_classify_pieces_reads_a_sentence_cut_in_clauses_as_one():
    text = "I'm so excited, we're flying to Rome tomorrow! The flight leaves at nine."
    pieces = prepare_segments(text, "en")
    assert len(pieces) == 3  # the engine's default cut splits the first sentence at its comma
    guesses = classify_pieces(pieces, "en")
    assert [guess.label for guess in guesses] == ["happy", "happy", "neutral"]
    assert guesses[0] is guesses[1]


def test_shipped_model_knows_only_cues_of_the_shipped_lexicons():
    """Weights of removed cues mean the lexicons changed without retraining (python -m myna.train.emotion_text)."""
    model = bundled_model()
    stale = [name for name in model.weights if name.startswith(("w:", "nw:"))
             and name.split(":", 2)[2] not in lexicon(name.split(":", 2)[1]).cues]
    assert stale == []


# Measured on the evaluation set (benchmarks/emotion.py): zh 0.938, en 0.938, ja 0.931, macro-F1 0.941.
FLOORS = {"zh": 0.90, "en": 0.90, "ja": 0.89}


def test_evaluation_set_accuracy_stays_above_its_floor():
    examples = load_examples(EVAL_SET)
    assert {lang: sum(e.lang == lang for e in examples) for lang in FLOORS} == {"zh": 130, "en": 130, "ja": 130}
    report = evaluate(examples, lambda text, lang: classify(text, lang).label, LABELS)
    assert {lang: report.accuracy(lang) >= floor for lang, floor in FLOORS.items()} == dict.fromkeys(FLOORS, True), \
        {lang: report.accuracy(lang) for lang in FLOORS}
    assert report.macro_f1() >= 0.90
