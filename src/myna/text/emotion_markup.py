"""How a request asks for an emotion in text: labels, inline tags, and OpenAI-style instructions.

* Labels are free words (`check_label`): ASCII, starting with a letter, up to 32 characters, stored
  lower-case. The common ones are `COMMON_LABELS`; `auto` is reserved (the text classifier picks).
* Inline tags (`parse_tags` on plain text, `tag_items` on a plan of SSML spans): a label in square
  brackets switches the emotion from that point to the next tag: `[happy] Great news! [sad] But not
  for everyone.` Any bracketed word shaped like a label is a tag and is never spoken (a voice
  without that label falls back, with a note).
* Instructions (`label_from_instructions`): a sentence such as "Speak in a calm, soothing voice"
  becomes a label by keywords (English, Chinese, Japanese); see the function for the rules.

Plain Python: no torch, no models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from myna.errors import InputError
from myna.text.ssml import Break, PlanItem, Span

COMMON_LABELS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "calm", "whisper")
AUTO = "auto"  # not a label: the text classifier (myna.text.emotion) picks one per sentence
MAX_LABEL_CHARS = 32
_LABEL = re.compile(rf"[a-z][a-z0-9_-]{{0,{MAX_LABEL_CHARS - 1}}}")
_TAG = re.compile(rf"\[\s*([A-Za-z][A-Za-z0-9_-]{{0,{MAX_LABEL_CHARS - 1}}})\s*\]")


def check_label(label: str, allow_auto: bool = False) -> str:
    """The label lower-cased, or an InputError saying what a label may be."""
    if not isinstance(label, str):
        raise InputError(f"an emotion label is a word, got {label!r}")
    text = label.strip().lower()
    if text == AUTO and allow_auto:
        return AUTO
    if text == AUTO:
        raise InputError("'auto' is not a label a reference can have: it asks the text classifier for one")
    if not _LABEL.fullmatch(text):
        raise InputError(
            f"emotion label {label!r} is not usable: a label is one word of ASCII letters, digits, '-' or '_', "
            f"starting with a letter, at most {MAX_LABEL_CHARS} characters (e.g. {', '.join(COMMON_LABELS)})"
        )
    return text


@dataclass(frozen=True)
class TaggedRun:
    """A stretch of text and the label its tag asked for (None: before any tag)."""

    text: str
    label: str | None


def parse_tags(text: str) -> list[TaggedRun]:
    """Cut text at its `[label]` tags; runs keep their text (tags removed), empty runs are dropped.

    A tag applies until the next one; `[auto]` hands the rest back to the text classifier.
    Text without tags is one run holding the text unchanged.
    """
    runs: list[TaggedRun] = []
    label: str | None = None
    start = 0
    for match in _TAG.finditer(text):
        runs.append(TaggedRun(text[start:match.start()], label))
        label = match.group(1).lower()
        start = match.end()
    if not runs:
        return [TaggedRun(text, None)]
    runs.append(TaggedRun(text[start:], label))
    return [TaggedRun(run.text.strip(), run.label) for run in runs if run.text.strip()]


def tag_items(items: list[PlanItem]) -> list[tuple[str | None, list[PlanItem]]]:
    """Cut a plan (myna.text.ssml spans and breaks) at the `[label]` tags inside its spans' text.

    Returns (label, items) groups in order, the label None before the first tag; a tag before
    anything speakable relabels its group, and trailing breaks stay with the last group. Text at a
    tag is stripped on that side. A plan without tags is one group holding the items unchanged.
    """
    groups: list[tuple[str | None, list[PlanItem]]] = [(None, [])]
    for item in items:
        if isinstance(item, Break) or item.phones is not None or not _TAG.search(item.text):
            groups[-1][1].append(item)
            continue
        start = 0
        for match in _TAG.finditer(item.text):
            if item.text[start:match.start()].strip():
                groups[-1][1].append(replace(item, text=item.text[start:match.start()].rstrip()))
            label = match.group(1).lower()
            if any(_speakable(piece) for piece in groups[-1][1]):
                groups.append((label, []))
            else:  # nothing spoken yet under the previous label: this tag replaces it
                groups[-1] = (label, groups[-1][1])
            start = match.end()
        if item.text[start:].strip():
            groups[-1][1].append(replace(item, text=item.text[start:].lstrip()))
    if len(groups) > 1 and not any(_speakable(piece) for piece in groups[-1][1]):
        _, rest = groups.pop()
        groups[-1][1].extend(rest)
    return [group for group in groups if group[1]]


def _speakable(item: PlanItem) -> bool:
    return isinstance(item, Span) and (item.phones is not None or bool(item.text.strip()))


def has_tags(text: str) -> bool:
    """Whether the text holds at least one `[label]` tag."""
    return _TAG.search(text) is not None


# Keywords per label for `label_from_instructions`. English entries are regular expressions matched
# at word starts (case-insensitive); Chinese and Japanese ones are plain substrings.
_EN_KEYWORDS = {
    "neutral": r"neutral(?:ly)?|flat(?:ly)?|monotone|deadpan|emotionless|matter[- ]of[- ]fact(?:ly)?|no emotion",
    "happy": r"happ(?:y|ily|iness)|cheerful(?:ly)?|joy(?:ful|fully|ous)?|excited(?:ly)?|excitement|upbeat|"
             r"enthusiastic(?:ally)?|delighted|glad(?:ly)?|elated|smiling|laughing",
    "sad": r"sad(?:ly|ness)?|sorrow(?:ful|fully)?|melanchol(?:y|ic)|gloom(?:y|ily)|somb(?:er|re)|mournful(?:ly)?|"
           r"depressed|heartbroken|grie(?:f|ving)|tearful(?:ly)?|unhappy|downcast",
    "angry": r"angr(?:y|ily)|anger|furious(?:ly)?|fury|mad|irritated|annoyed|rag(?:e|ing)|frustrated|outraged|"
             r"irate|livid|hostile",
    "surprised": r"surpris(?:e|ed|ing|ingly)|astonish(?:ed|ment)|amazed|amazement|shocked|startled|disbelief",
    "fearful": r"fear(?:ful|fully)?|afraid|scared|frightened|terrified|nervous(?:ly)?|anxious(?:ly)?|"
               r"panic(?:ked|ky)?|worried|trembling",
    "calm": r"calm(?:ly)?|sooth(?:ing|ingly)|relax(?:ed|ing)|gentl(?:e|y)|seren(?:e|ely)|peaceful(?:ly)?|"
            r"tranquil|composed|soft(?:ly)?|quiet(?:ly)?",
    "whisper": r"whisper(?:ed|ing|s)?|hushed|under (?:your|one's|his|her|their) breath|sotto voce|barely audible",
}
_CJK_KEYWORDS = {
    "neutral": ("中性", "平淡", "不带感情", "没有感情", "无感情", "淡々と", "無感情", "平坦に"),
    "happy": ("开心", "高兴", "快乐", "愉快", "欢快", "兴奋", "喜悦", "欣喜", "嬉しそう", "嬉しい", "楽しそう",
              "楽しい", "明るく", "元気に"),
    "sad": ("伤心", "难过", "悲伤", "忧伤", "沮丧", "低落", "哀伤", "悲しそう", "悲しげ", "悲しい", "寂しそう",
            "落ち込"),
    "angry": ("生气", "愤怒", "恼火", "发火", "暴躁", "气愤", "怒って", "怒り", "怒った", "腹を立て", "イライラ"),
    "surprised": ("惊讶", "吃惊", "震惊", "惊奇", "驚い", "驚き", "びっくり"),
    "fearful": ("害怕", "恐惧", "紧张", "惊恐", "担心", "胆怯", "怖がっ", "怯え", "恐怖", "不安そう"),
    "calm": ("平静", "冷静", "温柔", "舒缓", "轻柔", "沉稳", "放松", "落ち着い", "穏やか", "優しく", "静かに"),
    "whisper": ("耳语", "悄悄", "小声", "低声", "轻声", "囁", "ささやき", "ささやく", "ささやい", "ひそひそ", "小声で"),
}
_EN_PATTERN = re.compile(
    "|".join(rf"\b(?P<{label}>{pattern})\b" for label, pattern in _EN_KEYWORDS.items()), re.IGNORECASE
)
_EN_NEGATORS = re.compile(r"(?:\b(?:not|no|never|dont|without|less|nor|avoid)|n't)\s+(?:[\w']+\s+){0,2}$",
                          re.IGNORECASE)
_ZH_NEGATORS = ("不要", "不用", "无需", "别太", "不太", "不", "别", "没", "勿")


def label_from_instructions(instructions: str | None) -> str | None:
    """The emotion label an instruction text asks for, or None when it names none.

    Rules, in order: (1) empty -> None; (2) the whole text is one label-shaped word (`excited`,
    `auto`) -> that word, as a free label; (3) otherwise the label of the earliest keyword (English
    words and their -ly/-ed forms, Chinese and Japanese words; `_EN_KEYWORDS`, `_CJK_KEYWORDS`) that
    is not negated: an English keyword with not/no/never/don't/without/less within the three words
    before it, or a Chinese one right after 不/别/没/不要/无需, does not count ("calm, not angry" is
    calm); at the same position the longer keyword wins; (4) no keyword -> None.
    """
    text = (instructions or "").strip()
    if not text:
        return None
    if _LABEL.fullmatch(text.lower()):
        return text.lower()
    found: list[tuple[int, int, str]] = []
    for match in _EN_PATTERN.finditer(text):
        if not _EN_NEGATORS.search(text[: match.start()]):
            found.append((match.start(), -len(match.group()), match.lastgroup or ""))
    for label, words in _CJK_KEYWORDS.items():
        for word in words:
            start = text.find(word)
            while start >= 0:
                before = text[max(0, start - 2):start]
                negated = any(before.endswith(neg) for neg in _ZH_NEGATORS) and not word.startswith(("不", "没"))
                if not negated:
                    found.append((start, -len(word), label))
                    break
                start = text.find(word, start + 1)
    return min(found)[2] if found else None
