"""g2pW readings: model-directory checks, prediction parsing and parity with upstream's g2pW branch.

The model is tiny and random (tests/text/data/g2pw_dummy, rebuilt by make_dummy.py there); the
reference rows come from upstream's real text.g2pw + chinese2 run on the same files
(g2pw_dummy/upstream_reference.py).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tokenizers")
pytest.importorskip("opencc")

from myna.errors import InputError  # noqa: E402
from myna.text import frontend  # noqa: E402
from myna.text.zh.g2p import g2p, sentences  # noqa: E402
from myna.text.zh.g2pw import G2PW, read_word_readings  # noqa: E402

DATA = Path(__file__).parent / "data"
DUMMY = DATA / "g2pw_dummy"
ROWS = [
    json.loads(line) for line in (DATA / "zh_g2pw_upstream.jsonl").read_text(encoding="utf-8").splitlines()
]


@pytest.fixture(scope="module")
def predictor() -> G2PW:
    return G2PW(DUMMY / "G2PWModel", DUMMY / "bert")


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    model, bert = tmp_path / "G2PWModel", tmp_path / "bert"
    shutil.copytree(DUMMY / "G2PWModel", model)
    shutil.copytree(DUMMY / "bert", bert)
    return model, bert


@pytest.mark.parametrize(
    "name",
    ["g2pW.onnx", "POLYPHONIC_CHARS.txt", "MONOPHONIC_CHARS.txt", "bopomofo_to_pinyin_wo_tune_dict.json"],
)
def test_missing_model_file_is_named(tmp_path: Path, name: str) -> None:
    model, bert = _copy(tmp_path)
    (model / name).unlink()
    with pytest.raises(InputError, match=re.escape(name)):
        G2PW(model, bert)


def test_missing_directories_and_tokenizer(tmp_path: Path) -> None:
    model, bert = _copy(tmp_path)
    with pytest.raises(InputError, match="is not a directory"):
        G2PW(tmp_path / "nowhere", bert)
    (bert / "tokenizer.json").unlink()
    G2PW(model, bert)  # vocab.txt is enough
    (bert / "vocab.txt").unlink()
    with pytest.raises(InputError, match="tokenizer.json nor vocab.txt"):
        G2PW(model, bert)


def test_optional_files(tmp_path: Path) -> None:
    model, bert = _copy(tmp_path)
    for name in ("config.py", "char_bopomofo_dict.json", "polyphonic.rep", "polyphonic-fix.rep"):
        (model / name).unlink()
    bare = G2PW(model, bert)
    assert bare.word_readings == {}
    assert bare.correct("银行", ["yin2", "xing2"]) == ["yin2", "xing2"]


def test_bad_table_line(tmp_path: Path) -> None:
    model, bert = _copy(tmp_path)
    (model / "MONOPHONIC_CHARS.txt").write_text("我 ㄨㄛ3\n", encoding="utf-8")
    with pytest.raises(InputError, match="MONOPHONIC_CHARS.txt line 1"):
        G2PW(model, bert)
    (model / "MONOPHONIC_CHARS.txt").write_text("我\tㄨㄛ3\n", encoding="utf-8")
    (model / "polyphonic.rep").write_text("银行 yin2 hang2\n", encoding="utf-8")
    with pytest.raises(InputError, match="polyphonic.rep line 1"):
        G2PW(model, bert)


def test_word_dictionaries_fix_overrides() -> None:
    table = read_word_readings(DUMMY / "G2PWModel")
    assert table["银行"] == ["yin2", "hang2"]
    assert table["快乐"] == ["kuai4", "le5"]  # polyphonic-fix.rep wins


def test_predictions_parsed(predictor: G2PW) -> None:
    (readings,) = predictor(["我们去银行,好似梦!"])
    assert len(readings) == len("我们去银行,好似梦!")
    assert readings[:3] == ["wo3", "men5", "qu4"]  # monophonic table (bopomofo -> pinyin)
    assert readings[4] in ("xing2", "hang2")  # model choice among 行's labels
    assert readings[5] == "," and readings[-1] == "!"  # other characters pass through
    assert readings[7] == "si4"  # 似 is ignored in the monophonic table: pypinyin
    assert predictor([]) == []
    assert predictor(["。"]) == [["。"]]
    assert predictor.correct("都", ["du1"]) == ["dou1"]
    assert predictor.correct("长辈们", ["chang2", "bei4", "men5"]) == ["chang2", "bei4", "men5"]
    assert predictor.correct("都市", ["du1", "shi4"]) == ["dou1", "shi4"]


@pytest.mark.parametrize("row", ROWS, ids=[row["norm_text"][:12] for row in ROWS])
def test_upstream_parity(predictor: G2PW, row: dict) -> None:
    pieces = [re.sub("[a-zA-Z]+", "", piece) for piece in sentences(row["norm_text"])]
    assert predictor([piece for piece in pieces if piece]) == row["readings"]
    assert g2p(row["norm_text"], "v2", polyphones=predictor) == (row["phones"], row["word2ph"])


def test_frontend_threads_predictor(predictor: G2PW) -> None:
    differing = [row for row in ROWS if frontend.g2p(row["text"], "zh").phones != row["phones"]]
    assert len(differing) > 5  # the random model reads many polyphones unlike pypinyin
    row = differing[0]
    with_model = frontend.g2p(row["text"], "zh", polyphones=predictor)
    assert with_model.phones == row["phones"] and with_model.word2ph == row["word2ph"]
    # v1 upstream has no g2pW branch: the predictor is ignored
    assert frontend.g2p(row["text"], "zh", "v1", polyphones=predictor) == frontend.g2p(
        row["text"], "zh", "v1"
    )
