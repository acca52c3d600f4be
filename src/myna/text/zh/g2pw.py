"""Context-dependent readings of polyphonic characters with a g2pW ONNX model (optional).

GPT-SoVITS reads polyphonic characters with g2pW: a BERT-based classifier that looks at the whole
sentence. `G2PW` runs such a model from local directories only:

- `model_dir` (upstream's `G2PWModel`): `g2pW.onnx` (or `g2pw.onnx`), `POLYPHONIC_CHARS.txt` and
  `MONOPHONIC_CHARS.txt` (character TAB bopomofo-with-tone per line),
  `bopomofo_to_pinyin_wo_tune_dict.json`; optional `config.py` (only the literal assignments
  `use_mask` and `use_char_phoneme` are read, the file is never executed; defaults True / False)
  and optional word dictionaries `polyphonic.rep` then `polyphonic-fix.rep` (lines
  `词: ['ci2']`; the second overrides the first) used by `G2PW.correct`.
- `bert_dir`: the tokenizer of the BERT the model was trained with (`tokenizer.json`, else
  `vocab.txt`), e.g. GPT-SoVITS' `chinese-roberta-wwm-ext-large`.

Characters the model does not cover take pypinyin's sentence reading, as upstream does.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from myna.errors import InputError
from myna.text.zh.chars import traditional_to_simplified_table

# Characters upstream always reads without the model, and monophonic entries it ignores.
_NOT_QUERIED = frozenset("一不和咋嗲剖差攢倒難奔勁拗肖瘙誒泊听噢")
_NOT_MONOPHONIC = frozenset("似攢")
# Upstream crops the sentence to this many characters around the first/last polyphonic character.
_CONTEXT_CHARS = 16
_MAX_TOKENS = 512
_INPUTS = ("input_ids", "token_type_ids", "attention_mask", "phoneme_mask", "char_ids", "position_ids")
_WORD = re.compile(r" +|[a-zA-Z0-9]+|.", re.DOTALL)
_PINYIN_FILE = "bopomofo_to_pinyin_wo_tune_dict.json"
_WORD_FILES = ("polyphonic.rep", "polyphonic-fix.rep")


@dataclass(frozen=True)
class _Encoded:
    """One tokenized text: its tokens, the token index of each character, each token's char span."""

    tokens: list[str]
    char_token: list[int | None]
    token_span: list[tuple[int, int]]


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(
            f"g2pW: {path.parent} has no {path.name} ({what}); point to a complete model directory"
        )
    return path


def _rows(path: Path) -> list[tuple[str, str]]:
    """TAB-separated (character, bopomofo) pairs of a character table."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").strip().split("\n"), 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise InputError(f"g2pW: {path} line {number} is not 'character<TAB>bopomofo': {line!r}")
        rows.append((fields[0], fields[1]))
    return rows


def _config_flags(path: Path) -> tuple[bool, bool]:
    """(use_mask, use_char_phoneme) from literal assignments in the model's config.py."""
    flags = {"use_mask": True, "use_char_phoneme": False}
    if not path.is_file():
        return flags["use_mask"], flags["use_char_phoneme"]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in flags:
                try:
                    flags[name] = bool(ast.literal_eval(node.value))
                except ValueError as err:
                    raise InputError(f"g2pW: {path}: {name} must be a literal True or False") from err
    return flags["use_mask"], flags["use_char_phoneme"]


def read_word_readings(model_dir: Path) -> dict[str, list[str]]:
    """Word -> pinyin list from the optional polyphonic.rep / polyphonic-fix.rep in `model_dir`."""
    table: dict[str, list[str]] = {}
    for name in _WORD_FILES:
        path = model_dir / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            word, sep, value = line.partition(":")
            try:
                readings = ast.literal_eval(value.strip()) if sep else None
            except (ValueError, SyntaxError):
                readings = None
            if not isinstance(readings, list) or not all(isinstance(r, str) for r in readings):
                raise InputError(f"g2pW: {path} line {number} is not 'word: [\"pinyin1\", ...]': {line!r}")
            table[word.strip()] = readings
    return table


def _tokenizer(bert_dir: Path):
    """A `tokenizers.Tokenizer` from tokenizer.json, else a BERT word-piece tokenizer over vocab.txt."""
    from tokenizers import Tokenizer
    from tokenizers.implementations import BertWordPieceTokenizer

    if (bert_dir / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(bert_dir / "tokenizer.json"))
    elif (bert_dir / "vocab.txt").is_file():
        lowercase = True
        config = bert_dir / "tokenizer_config.json"
        if config.is_file():
            lowercase = bool(json.loads(config.read_text(encoding="utf-8")).get("do_lower_case", True))
        tokenizer = BertWordPieceTokenizer(str(bert_dir / "vocab.txt"), lowercase=lowercase)._tokenizer
    else:
        raise InputError(f"g2pW: {bert_dir} has neither tokenizer.json nor vocab.txt (the BERT tokenizer)")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    for special in ("[CLS]", "[SEP]", "[UNK]"):
        if tokenizer.token_to_id(special) is None:
            raise InputError(f"g2pW: the tokenizer in {bert_dir} has no {special} token")
    return tokenizer


def _sentence_readings(text: str) -> list[str]:
    """pypinyin's tone-3 reading of each character of `text` (neutral tone 5; others as they are)."""
    from pypinyin import Style, pinyin

    items = pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    if len(items) != len(text):  # a run of several non-hanzi characters came back as one item
        items = [(pinyin(c, style=Style.TONE3, neutral_tone_with_five=True) or [[c]])[0] for c in text]
    return [item[0] for item in items]


def _encode(tokenizer, text: str) -> _Encoded | None:
    """Tokenize `text` word by word (ASCII letter/digit runs, else single characters; spaces skipped)."""
    char_token: list[int | None] = []
    spans: list[tuple[int, int]] = []
    for match in _WORD.finditer(text):
        if match.group().startswith(" "):
            char_token.extend([None] * len(match.group()))
            continue
        spans.append(match.span())
        char_token.extend([len(spans) - 1] * len(match.group()))
    tokens: list[str] = []
    token_span: list[tuple[int, int]] = []
    for start, end in spans:
        pieces = tokenizer.encode(text[start:end], add_special_tokens=False).tokens
        if not pieces or pieces == ["[UNK]"]:
            tokens.append("[UNK]")
            token_span.append((start, end))
            continue
        for piece in pieces:
            # a token covers as many characters as it has letters (upstream's rule, [UNK] included)
            width = len(piece[2:] if piece.startswith("##") else piece)
            tokens.append(piece)
            token_span.append((start, start + width))
            start += width
    # Characters start out mapped to their word's index and are then overwritten by token index.
    for token, (start, end) in enumerate(token_span):
        if end > len(char_token):
            return None
        for at in range(start, end):
            char_token[at] = token
    return _Encoded(tokens, char_token, token_span)


def _window(encoded: _Encoded, query: int, max_len: int) -> tuple[list[str], int]:
    """Tokens of at most `max_len - 2` around the query character, and the query's token index."""
    budget = max_len - 2
    tokens, char_token, span = encoded.tokens, encoded.char_token, encoded.token_span
    if len(tokens) <= budget:
        return tokens, char_token[query]
    first = char_token[query] - budget // 2
    last = first + budget
    if first < 0:
        first, last = 0, budget
    elif last > len(tokens):
        first, last = len(tokens) - budget, len(tokens)
    start, end = span[first][0], span[last - 1][1]
    local = [None if i is None else i - first for i in char_token[start:end]]
    return tokens[first:last], local[query - start]


def _batch_inputs(
    tokenizer, texts: list[str], queries: list[int], encoded: dict[str, _Encoded | None], max_len: int
) -> dict[str, np.ndarray] | None:
    """Padded encoder inputs and query positions for every (text, character) query; None if untokenizable."""
    rows: list[list[int]] = []
    positions: list[int] = []
    for text, query in zip(texts, queries, strict=True):
        entry = encoded[text.lower()]
        if entry is None:
            return None
        tokens, position = _window(entry, query, max_len)
        rows.append([tokenizer.token_to_id(t) for t in ["[CLS]", *tokens, "[SEP]"]])
        positions.append(position + 1)  # after [CLS]
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    attention = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        attention[i, : len(row)] = 1
    return {
        "input_ids": ids,
        "token_type_ids": np.zeros_like(ids),
        "attention_mask": attention,
        "position_ids": np.array(positions, dtype=np.int64),
    }


@cache
def _s2tw():
    from opencc import OpenCC

    return OpenCC("s2tw")


class G2PW:
    """A g2pW model: `predictor(sentences)` gives one pinyin-with-tone (e.g. "hang2") per character."""

    def __init__(self, model_dir: str | Path, bert_dir: str | Path, threads: int = 2) -> None:
        """Load the model, its tables and the tokenizer; raises InputError naming any missing file."""
        self.model_dir = Path(model_dir)
        self.bert_dir = Path(bert_dir)
        for directory in (self.model_dir, self.bert_dir):
            if not directory.is_dir():
                raise InputError(f"g2pW: {directory} is not a directory")
        onnx_path = self.model_dir / "g2pW.onnx"
        if not onnx_path.is_file():
            onnx_path = _need(self.model_dir / "g2pw.onnx", "the g2pW model, g2pW.onnx")
        polyphonic = _rows(_need(self.model_dir / "POLYPHONIC_CHARS.txt", "polyphonic characters"))
        monophonic = _rows(_need(self.model_dir / "MONOPHONIC_CHARS.txt", "monophonic characters"))
        toneless = _need(self.model_dir / _PINYIN_FILE, "bopomofo to pinyin table")
        self._pinyin_of = json.loads(toneless.read_text(encoding="utf-8"))
        self._use_mask, self._char_labels = _config_flags(self.model_dir / "config.py")
        self.word_readings = read_word_readings(self.model_dir)

        if self._char_labels:
            labels = sorted({f"{char} {reading}" for char, reading in polyphonic})
            names = [f"{char} {reading}" for char, reading in polyphonic]
        else:
            labels = sorted({reading for _, reading in polyphonic})
            names = [reading for _, reading in polyphonic]
        index = {label: i for i, label in enumerate(labels)}
        choices: dict[str, list[int]] = {}
        for (char, _), name in zip(polyphonic, names, strict=True):
            choices.setdefault(char, []).append(index[name])
        self._labels = labels
        self._char_id = {char: i for i, char in enumerate(sorted(choices))}
        self._masks = {
            char: np.isin(np.arange(len(labels)), ids).astype(np.float32) for char, ids in choices.items()
        }
        self._queried = frozenset(choices) - _NOT_QUERIED
        self._monophonic = {char: reading for char, reading in monophonic if char not in _NOT_MONOPHONIC}
        self._tokenizer = _tokenizer(self.bert_dir)
        self._session = self._open(onnx_path, threads)

    @staticmethod
    def _open(path: Path, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable models
            raise InputError(f"g2pW: cannot load {path}: {err}") from err
        missing = set(_INPUTS) - {tensor.name for tensor in session.get_inputs()}
        if missing:
            raise InputError(f"g2pW: {path} lacks the inputs {sorted(missing)}; is it a g2pW model?")
        return session

    def _to_pinyin(self, bopomofo: str) -> str | None:
        """Bopomofo with tone digit -> pinyin with tone digit (None when the table lacks it)."""
        tone = bopomofo[-1:]
        toneless = self._pinyin_of.get(bopomofo[:-1]) if tone in ("1", "2", "3", "4", "5") else None
        return toneless + tone if toneless else None

    def __call__(self, sentences: Sequence[str]) -> list[list[str]]:
        """Per sentence, one reading per character: pinyin + tone digit (5 = neutral), other characters as is."""
        results: list[list[str]] = []
        texts: list[str] = []
        queries: list[tuple[int, int, int]] = []  # (sentence, character, position in its text)
        for number, sentence in enumerate(sentences):
            script = _s2tw().convert(sentence)
            if len(script) != len(sentence):  # upstream asserts here; keep the characters as given
                script = sentence
            fallback = _sentence_readings(script.translate(traditional_to_simplified_table()))
            readings = list(fallback)
            polyphones = []
            for i, char in enumerate(script):
                if char in self._queried:
                    polyphones.append(i)
                elif char in self._monophonic:
                    readings[i] = self._to_pinyin(self._monophonic[char]) or readings[i]
            if polyphones:
                left = max(0, polyphones[0] - _CONTEXT_CHARS)
                right = min(len(script), polyphones[-1] + _CONTEXT_CHARS + 1)
                for i in polyphones:
                    texts.append(script[left:right])
                    queries.append((number, i, i - left))
            results.append(readings)
        if not texts:
            return results

        encoded = {text.lower(): _encode(self._tokenizer, text.lower()) for text in set(texts)}
        chars = [text.lower()[at] for text, (_, _, at) in zip(texts, queries, strict=True)]
        feeds = _batch_inputs(self._tokenizer, texts, [at for _, _, at in queries], encoded, _MAX_TOKENS)
        if feeds is None:  # a text the tokenizer cannot map: upstream gives up on the whole batch
            return results
        feeds["phoneme_mask"] = np.stack(
            [self._masks[c] if self._use_mask else np.ones(len(self._labels), np.float32) for c in chars]
        )
        feeds["char_ids"] = np.array([self._char_id[c] for c in chars], dtype=np.int64)
        for (number, i, _), label in zip(queries, self._predict(feeds, texts), strict=True):
            reading = self._to_pinyin(label.split(" ")[1] if self._char_labels else label)
            if reading:
                results[number][i] = reading
        return results

    def _predict(self, feeds: dict[str, np.ndarray], texts: list[str]) -> list[str]:
        """Label per query; queries on the same text share one encoder row, as upstream batches them."""
        groups: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            groups.setdefault(text, []).append(i)
        if len(texts) <= 1 or all(len(rows) == 1 for rows in groups.values()):
            return self._run(feeds)
        labels = [""] * len(texts)
        for rows in groups.values():
            part = {name: value[rows] for name, value in feeds.items()}
            if len(rows) > 1:
                for name in ("input_ids", "token_type_ids", "attention_mask"):
                    part[name] = part[name][:1]
            for row, label in zip(rows, self._run(part), strict=True):
                labels[row] = label
        return labels

    def _run(self, feeds: dict[str, np.ndarray]) -> list[str]:
        probabilities = self._session.run(None, {name: feeds[name] for name in _INPUTS})[0]
        return [self._labels[i] for i in np.argmax(probabilities, axis=1).tolist()]

    def correct(self, word: str, readings: list[str]) -> list[str]:
        """Readings of one segmented word after the model directory's word dictionaries (if any)."""
        if word in self.word_readings:
            return list(self.word_readings[word])
        fixed = list(readings)
        for i, char in enumerate(word):
            if char in self.word_readings:
                fixed[i] = self.word_readings[char][0]
        return fixed


@lru_cache(maxsize=4)
def load_g2pw(model_dir: str, bert_dir: str) -> G2PW:
    """A `G2PW` for these directories, loaded once per (model_dir, bert_dir) pair."""
    return G2PW(model_dir, bert_dir)
