"""Mandarin tone sandhi on pypinyin finals, as GPT-SoVITS applies it (PaddleSpeech's rules).

Two steps: `merge_words` regroups jieba's words so the rules see whole units (不/一 with their
neighbour, reduplications, third-tone runs, 儿), then `apply_sandhi` rewrites one word's tones
(不, 一, neutral tone, third-tone chains). Finals are strings like "ao3"; tone 5 is neutral.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from myna.text.zh.words import Tagged, finals_of, search_split

# After 一 these marks keep it in the first tone (一, said on its own).
_PAUSE_MARKS = frozenset("：，；。？！“”‘’':,;.?!")
_MODAL_PARTICLES = frozenset("吧呢哈啊呐噻嘛吖嗨呐哦哒额滴哩哟喽啰耶喔诶")
_STRUCTURAL_PARTICLES = frozenset("的地得")
_ASPECT_PARTICLES = frozenset("了着过")
_NOUN_SUFFIXES = frozenset("们子")
_LOCATIVE_SUFFIXES = frozenset("上下里")
_DIRECTIONAL_HEADS = frozenset("上下进出回过起开")
_DIRECTIONAL_TAILS = frozenset("来去")
# Characters that make a following 个 a measure word (besides digits).
_MEASURE_LEADS = frozenset("几有两半多各整每做是")


@dataclass(frozen=True)
class WordLists:
    """Lexical exceptions used by the sandhi and erhua rules."""

    neutral: frozenset[str]
    never_neutral: frozenset[str]
    always_erhua: frozenset[str]
    never_erhua: frozenset[str]


@cache
def word_lists() -> WordLists:
    """The word lists bundled in `data/tone_sandhi.json`."""
    raw = json.loads(resources.files("myna.text.zh").joinpath("data/tone_sandhi.json").read_text("utf-8"))
    return WordLists(
        neutral=frozenset(raw["must_neutral_tone"]),
        never_neutral=frozenset(raw["never_neutral_tone"]),
        always_erhua=frozenset(raw["always_erhua"]),
        never_erhua=frozenset(raw["never_erhua"]),
    )


def _with_tone(final: str, tone: str) -> str:
    return final[:-1] + tone


def _all_third(finals: list[str] | tuple[str, ...]) -> bool:
    return all(final[-1] == "3" for final in finals)


def _is_doubled(word: str) -> bool:
    return len(word) == 2 and word[0] == word[1]


# ---------------------------------------------------------------------------- word regrouping


def _join_bu(words: list[Tagged]) -> list[Tagged]:
    """Attach a lone 不 to the word after it (a final 不 stays, tagged as adverb)."""
    merged: list[Tagged] = []
    previous = ""
    for word, pos in words:
        if previous == "不":
            word = previous + word
        if word != "不":
            merged.append((word, pos))
        previous = word
    if previous == "不":
        merged.append(("不", "d"))
    return merged


def _join_yi(words: list[Tagged]) -> list[Tagged]:
    """Fold verb-一-verb into one word (听一听), then attach a lone 一 to the word after it."""
    folded: list[Tagged] = []
    index = 0
    while index < len(words):
        word, pos = words[index]
        if word == "一" and 0 < index < len(words) - 1:
            left, right = folded[-1], words[index + 1]
            if left[0] == right[0] and left[1] == "v" and right[1] == "v":
                folded[-1] = (left[0] + "一" + right[0], left[1])
                index += 2
                continue
        folded.append((word, pos))
        index += 1
    joined: list[Tagged] = []
    for word, pos in folded:
        if joined and joined[-1][0] == "一":
            joined[-1] = ("一" + word, joined[-1][1])
        else:
            joined.append((word, pos))
    return joined


def _join_repeats(words: list[Tagged]) -> list[Tagged]:
    """Join a word with an identical word right after it (看 看 -> 看看)."""
    joined: list[Tagged] = []
    for word, pos in words:
        if joined and joined[-1][0] == word:
            joined[-1] = (joined[-1][0] + word, joined[-1][1])
        else:
            joined.append((word, pos))
    return joined


def _join_third_tones(words: list[Tagged], whole_words: bool) -> list[Tagged]:
    """Join neighbours meeting in third tones into words of at most three characters.

    `whole_words`: both words must be all third tone; otherwise only the touching syllables.
    A word that already absorbed its left neighbour is not joined again, nor is a reduplication.
    """
    finals = [finals_of(word) for word, _ in words]
    joined: list[Tagged] = []
    absorbed = [False] * len(words)
    for index, (word, pos) in enumerate(words):
        if index > 0:
            left = finals[index - 1]
            if whole_words:
                meets = _all_third(left) and _all_third(finals[index])
            else:
                meets = left[-1][-1] == "3" and finals[index][0][-1] == "3"
            left_word = words[index - 1][0]
            if (
                meets
                and not absorbed[index - 1]
                and not _is_doubled(left_word)
                and len(left_word) + len(word) <= 3
            ):
                joined[-1] = (joined[-1][0] + word, joined[-1][1])
                absorbed[index] = True
                continue
        joined.append((word, pos))
    return joined


def _join_er(words: list[Tagged]) -> list[Tagged]:
    """Attach a separate 儿 to the word before it."""
    joined: list[Tagged] = []
    for index, (word, pos) in enumerate(words):
        if index > 0 and word == "儿" and words[index - 1][0] != "#":
            joined[-1] = (joined[-1][0] + word, joined[-1][1])
        else:
            joined.append((word, pos))
    return joined


def merge_words(words: list[Tagged]) -> list[Tagged]:
    """Regroup jieba's (word, tag) list into the units the sandhi rules work on."""
    words = _join_bu(words)
    words = _join_yi(words)
    words = _join_repeats(words)
    # Upstream keeps the previous grouping if a step fails on odd input; only indexing can fail.
    for whole_words in (True, False):
        try:
            words = _join_third_tones(words, whole_words)
        except IndexError:
            pass
    return _join_er(words)


# ---------------------------------------------------------------------------- per-word tones


def _halves(word: str) -> tuple[str, str]:
    """Split `word` in two around its shortest search sub-word (upstream's heuristic)."""
    shortest = min(search_split(word), key=len)
    if word.find(shortest) == 0:
        return shortest, word[len(shortest) :]
    return word[: -len(shortest)], shortest


def _bu_tones(word: str, finals: list[str]) -> None:
    if len(word) == 3 and word[1] == "不":
        finals[1] = _with_tone(finals[1], "5")  # 看不懂
        return
    for index, char in enumerate(word[:-1]):
        if char == "不" and finals[index + 1][-1] == "4":
            finals[index] = _with_tone(finals[index], "2")  # 不怕


def _yi_tones(word: str, finals: list[str]) -> None:
    if "一" in word and all(char.isnumeric() for char in word if char != "一"):
        return  # a digit string read out: 一零零
    if len(word) == 3 and word[1] == "一" and word[0] == word[2]:
        finals[1] = _with_tone(finals[1], "5")  # 看一看
    elif word.startswith("第一"):
        finals[1] = _with_tone(finals[1], "1")
    else:
        for index, char in enumerate(word[:-1]):
            if char != "一":
                continue
            if finals[index + 1][-1] == "4":
                finals[index] = _with_tone(finals[index], "2")  # 一段
            elif word[index + 1] not in _PAUSE_MARKS:
                finals[index] = _with_tone(finals[index], "4")  # 一天


def _is_neutral_word(word: str, lists: WordLists) -> bool:
    return word in lists.neutral or word[-2:] in lists.neutral


def _neutral_tones(word: str, pos: str, finals: list[str]) -> list[str]:
    lists = word_lists()
    if pos[0] in "nva" and word not in lists.never_neutral:
        for index in range(1, len(word)):
            if word[index] == word[index - 1]:
                finals[index] = _with_tone(finals[index], "5")  # 奶奶, 试试
    ge = word.find("个")
    last = word[-1]
    if last in _MODAL_PARTICLES or last in _STRUCTURAL_PARTICLES:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) == 1 and word in _ASPECT_PARTICLES and pos in ("ul", "uz", "ug"):
        finals[-1] = _with_tone(finals[-1], "5")  # 走了, 看着
    elif len(word) > 1 and last in _NOUN_SUFFIXES and pos in ("r", "n") and word not in lists.never_neutral:
        finals[-1] = _with_tone(finals[-1], "5")
    elif len(word) > 1 and last in _LOCATIVE_SUFFIXES and pos in ("s", "l", "f"):
        finals[-1] = _with_tone(finals[-1], "5")  # 桌上, 家里
    elif len(word) > 1 and last in _DIRECTIONAL_TAILS and word[-2] in _DIRECTIONAL_HEADS:
        finals[-1] = _with_tone(finals[-1], "5")  # 上来, 下去
    elif (ge >= 1 and (word[ge - 1].isnumeric() or word[ge - 1] in _MEASURE_LEADS)) or word == "个":
        finals[ge] = _with_tone(finals[ge], "5")
    elif _is_neutral_word(word, lists):
        finals[-1] = _with_tone(finals[-1], "5")

    first, second = _halves(word)
    parts = [finals[: len(first)], finals[len(first) :]]
    for part, sub_word in zip(parts, (first, second), strict=True):
        if _is_neutral_word(sub_word, lists):
            part[-1] = _with_tone(part[-1], "5")
    return parts[0] + parts[1]


def _third_tones(word: str, finals: list[str]) -> list[str]:
    if len(word) == 2 and _all_third(finals):
        finals[0] = _with_tone(finals[0], "2")
    elif len(word) == 3:
        first, _ = _halves(word)
        if _all_third(finals):
            if len(first) == 2:  # 蒙古/包
                finals[0] = _with_tone(finals[0], "2")
                finals[1] = _with_tone(finals[1], "2")
            elif len(first) == 1:  # 纸/老虎
                finals[1] = _with_tone(finals[1], "2")
        else:
            head, tail = finals[: len(first)], finals[len(first) :]
            for index, part in enumerate((head, tail)):
                if len(part) == 2 and _all_third(part):
                    part[0] = _with_tone(part[0], "2")  # 所有/人
                elif index == 1 and not _all_third(part) and part[0][-1] == "3" and head[-1][-1] == "3":
                    head[-1] = _with_tone(head[-1], "2")  # 好/喜欢
            finals = head + tail
    elif len(word) == 4:  # idioms: two pairs
        head, tail = finals[:2], finals[2:]
        for part in (head, tail):
            if _all_third(part):
                part[0] = _with_tone(part[0], "2")
        finals = head + tail
    return finals


def apply_sandhi(word: str, pos: str, finals: list[str]) -> list[str]:
    """Tone-3 finals of `word` (tagged `pos`) after 不, 一, neutral-tone and third-tone sandhi."""
    finals = list(finals)
    _bu_tones(word, finals)
    _yi_tones(word, finals)
    finals = _neutral_tones(word, pos, finals)
    return _third_tones(word, finals)
