"""Build the tiny random g2pW-compatible model set used by tests/text/test_zh_g2pw.py.

    python make_dummy.py [OUTDIR]     # default: this directory

Needs torch, onnx, transformers and opencc (e.g. the upstream reference venv). Writes
OUTDIR/bert/ (a BERT tokenizer over the characters of sentences.txt, in both scripts) and
OUTDIR/G2PWModel/ (g2pW.onnx with g2pW's input names, the character and label tables, config.py and
two small polyphonic-word dictionaries). The weights are random (seed 1234): the model speaks no
Chinese, it only gives a deterministic, context-dependent choice among each character's labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HIDDEN = 8

# Traditional character -> its readings (bopomofo + tone). Labels of the dummy model.
POLYPHONIC = {
    "行": ["ㄒㄧㄥ2", "ㄏㄤ2"],
    "重": ["ㄓㄨㄥ4", "ㄔㄨㄥ2"],
    "長": ["ㄔㄤ2", "ㄓㄤ3"],
    "了": ["ㄌㄜ5", "ㄌㄧㄠ3"],
    "和": ["ㄏㄜ2", "ㄏㄜ4", "ㄏㄨㄛ5"],
    "樂": ["ㄌㄜ4", "ㄩㄝ4"],
    "得": ["ㄉㄜ2", "ㄉㄜ5", "ㄉㄟ3"],
    "地": ["ㄉㄧ4", "ㄉㄜ5"],
    "為": ["ㄨㄟ2", "ㄨㄟ4"],
    "還": ["ㄏㄞ2", "ㄏㄨㄢ2"],
    "的": ["ㄉㄜ5", "ㄉㄧ2", "ㄉㄧ4"],
    "發": ["ㄈㄚ1", "ㄈㄚ4"],
    "都": ["ㄉㄡ1", "ㄉㄨ1"],
    "覺": ["ㄐㄩㄝ2", "ㄐㄧㄠ4"],
    "一": ["ㄧ1", "ㄧ2", "ㄧ4"],
    "不": ["ㄅㄨ4", "ㄅㄨ2"],
    "乾": ["ㄍㄢ1", "ㄑㄧㄢ2"],
    "會": ["ㄏㄨㄟ4", "ㄎㄨㄞ4"],
    "兒": ["ㄦ2", "ㄦ5"],
}
MONOPHONIC = {
    "我": "ㄨㄛ3",
    "們": "ㄇㄣ5",
    "你": "ㄋㄧ3",
    "好": "ㄏㄠ3",
    "似": "ㄙ4",
    "天": "ㄊㄧㄢ1",
    "路": "ㄌㄨ4",
    "很": "ㄏㄣ3",
    "他": "ㄊㄚ1",
    "走": "ㄗㄡ3",
    "這": "ㄓㄜ4",
    "去": "ㄑㄩ4",
    "孩": "ㄏㄞ2",
    "玩": "ㄨㄢ2",
    "器": "ㄑㄧ4",
    "夢": "ㄇㄥ4",
    "聽": "ㄊㄧㄥ1",
    "看": "ㄎㄢ4",
}
TONELESS = {
    "ㄒㄧㄥ": "xing",
    "ㄏㄤ": "hang",
    "ㄓㄨㄥ": "zhong",
    "ㄔㄨㄥ": "chong",
    "ㄔㄤ": "chang",
    "ㄓㄤ": "zhang",
    "ㄌㄜ": "le",
    "ㄌㄧㄠ": "liao",
    "ㄏㄜ": "he",
    "ㄏㄨㄛ": "huo",
    "ㄩㄝ": "yue",
    "ㄉㄜ": "de",
    "ㄉㄟ": "dei",
    "ㄉㄧ": "di",
    "ㄨㄟ": "wei",
    "ㄏㄞ": "hai",
    "ㄏㄨㄢ": "huan",
    "ㄈㄚ": "fa",
    "ㄉㄡ": "dou",
    "ㄉㄨ": "du",
    "ㄐㄩㄝ": "jue",
    "ㄐㄧㄠ": "jiao",
    "ㄧ": "yi",
    "ㄅㄨ": "bu",
    "ㄍㄢ": "gan",
    "ㄑㄧㄢ": "qian",
    "ㄏㄨㄟ": "hui",
    "ㄎㄨㄞ": "kuai",
    "ㄦ": "er",
    "ㄨㄛ": "wo",
    "ㄇㄣ": "men",
    "ㄋㄧ": "ni",
    "ㄏㄠ": "hao",
    "ㄙ": "si",
    "ㄊㄧㄢ": "tian",
    "ㄌㄨ": "lu",
    "ㄏㄣ": "hen",
    "ㄊㄚ": "ta",
    "ㄗㄡ": "zou",
    "ㄓㄜ": "zhe",
    "ㄑㄩ": "qu",
    "ㄨㄢ": "wan",
    "ㄑㄧ": "qi",
    "ㄇㄥ": "meng",
    "ㄊㄧㄥ": "ting",
    "ㄎㄢ": "kan",
}
WORDS = "银行: ['yin2','hang2']\n长大: ['zhang3','da4']\n快乐: ['kuai4','le4']\n"
WORDS_FIX = "重新: ['chong2','xin1']\n都: ['dou1']\n长辈: ['zhang3','bei4']\n快乐: ['kuai4','le5']\n"
CONFIG = "manual_seed = 1313\nmodel_source = 'bert-base-chinese'\nwindow_size = 32\nuse_mask = True\nuse_char_phoneme = False\n"


def vocabulary() -> list[str]:
    """Special tokens, punctuation, a few word pieces and every character of sentences.txt (both scripts)."""
    from opencc import OpenCC

    text = (HERE / "sentences.txt").read_text(encoding="utf-8")
    text += OpenCC("s2tw").convert(text) + "".join(POLYPHONIC) + "".join(MONOPHONIC)
    chars = sorted({c for c in text if "\u4e00" <= c <= "\u9fff"})
    # "iphone" becomes "ip" "##hon" "##e" ("##one" is missing on purpose), "路" is left out: [UNK].
    pieces = ["ip", "##hon", "##e", "a", "b"]
    chars.remove("路")
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"!?…,.-", *pieces, *chars]


def write_tokenizer(out: Path, vocab: list[str]) -> None:
    """A BertTokenizerFast directory (tokenizer.json, vocab.txt, tokenizer_config.json)."""
    from transformers import BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    # transformers 5 ignores vocab_file=...: pass the vocabulary itself.
    ids = {token: i for i, token in enumerate(vocab)}
    BertTokenizerFast(
        vocab=ids, do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None
    ).save_pretrained(str(out))
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    assert json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"] == ids


def write_tables(out: Path) -> list[str]:
    """The text files of a G2PWModel directory; returns the sorted label list."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [f"{c}\t{b}" for c, bs in POLYPHONIC.items() for b in bs]
    (out / "POLYPHONIC_CHARS.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (out / "MONOPHONIC_CHARS.txt").write_text(
        "\n".join(f"{c}\t{b}" for c, b in MONOPHONIC.items()) + "\n", encoding="utf-8"
    )
    (out / "bopomofo_to_pinyin_wo_tune_dict.json").write_text(
        json.dumps(TONELESS, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    char_dict = {**POLYPHONIC, **{c: [b] for c, b in MONOPHONIC.items()}}
    (out / "char_bopomofo_dict.json").write_text(json.dumps(char_dict, ensure_ascii=False), encoding="utf-8")
    (out / "config.py").write_text(CONFIG, encoding="utf-8")
    (out / "polyphonic.rep").write_text(WORDS, encoding="utf-8")
    (out / "polyphonic-fix.rep").write_text(WORDS_FIX, encoding="utf-8")
    return sorted({b for bs in POLYPHONIC.values() for b in bs})


def write_onnx(path: Path, vocab_size: int, n_chars: int, n_labels: int) -> None:
    """Export the random scorer with g2pW's input names; input_ids may have 1 row for N queries."""
    import torch

    class Scorer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = torch.nn.Embedding(vocab_size, HIDDEN)
            self.types = torch.nn.Embedding(2, HIDDEN)
            self.chars = torch.nn.Embedding(n_chars, HIDDEN)
            self.context = torch.nn.Linear(HIDDEN, HIDDEN)
            self.focus = torch.nn.Linear(HIDDEN, HIDDEN)
            self.out = torch.nn.Linear(HIDDEN, n_labels)

        def forward(self, input_ids, token_type_ids, attention_mask, phoneme_mask, char_ids, position_ids):
            hidden = self.tokens(input_ids) + self.types(token_type_ids)
            mask = attention_mask.to(torch.float32).unsqueeze(-1)
            context = (hidden * mask).sum(1) / mask.sum(1)
            steps = torch.arange(input_ids.shape[1]).unsqueeze(0)
            pick = (steps == position_ids.unsqueeze(1)).to(torch.float32).unsqueeze(1)
            focus = torch.matmul(pick, hidden).squeeze(1)
            # context and the query token weigh more than the character itself: readings vary by sentence
            state = torch.tanh(
                4.0 * self.context(context) + 2.0 * self.focus(focus) + 0.2 * self.chars(char_ids)
            )
            probs = torch.softmax(self.out(state) * 4.0, dim=-1) * phoneme_mask
            return probs / probs.sum(-1, keepdim=True)

    torch.manual_seed(1234)
    model = Scorer().eval()
    n = 2
    example = (
        torch.zeros(1, 5, dtype=torch.long),
        torch.zeros(1, 5, dtype=torch.long),
        torch.ones(1, 5, dtype=torch.long),
        torch.ones(n, n_labels),
        torch.zeros(n, dtype=torch.long),
        torch.ones(n, dtype=torch.long),
    )
    names = ["input_ids", "token_type_ids", "attention_mask", "phoneme_mask", "char_ids", "position_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in names[:3]}
    axes.update({name: {0: "queries"} for name in names[3:]})
    axes["probabilities"] = {0: "queries"}
    torch.onnx.export(
        model,
        example,
        str(path),
        input_names=names,
        output_names=["probabilities"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )


def main() -> None:
    """Write bert/ and G2PWModel/ under the output directory."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    vocab = vocabulary()
    write_tokenizer(out / "bert", vocab)
    labels = write_tables(out / "G2PWModel")
    write_onnx(out / "G2PWModel" / "g2pW.onnx", len(vocab), len(POLYPHONIC), len(labels))


if __name__ == "__main__":
    main()
