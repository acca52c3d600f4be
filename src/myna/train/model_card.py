"""The default voice's model card: MODEL_CARD.md in its bundle (myna/assets/default), written by the recipe.

It states what a user of the bundled voice needs to know, from files the recipe already keeps: the
corpus's `sources.json` (`myna data synth`: packages, licences, speakers, hours), the work folder's
`curve.json` (WER against steps and CPU hours) and `progress.json` (CPU seconds per stage), and the
figures `benchmarks/voice_quality.py` measured on the bundle (WER by Whisper tiny.en on held-out
sentences, speaker similarity of zero-shot clones, RTF). Nothing is estimated here: a figure that was
not measured is written as such.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

CARD_FILE = "MODEL_CARD.md"
SOURCES_FILE = "DATA_SOURCES.md"  # the corpus's SOURCES.md (licence terms, speakers), kept beside the card


def _cell(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "/").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]


def _files(bundle: Path) -> list[tuple[str, float]]:
    return [(path.name, path.stat().st_size / 1e6) for path in sorted(bundle.iterdir())
            if path.is_file() and path.name != CARD_FILE]


def render_model_card(bundle: Path, sources: Mapping, curve: Sequence[Mapping], progress: Mapping[str, float],
                      measured: Mapping | None, recipe: Mapping[str, object]) -> str:
    """MODEL_CARD.md for the voice in folder `bundle`.

    `sources`: the corpus's sources.json; `curve`: the recipe's curve points; `progress`: CPU seconds by
    stage; `measured`: {"wer", "sentences", "rtf", "similarity": {group: {"voices", "own", "closest_other",
    "closer_share"}}} as voice_quality.py reports them, or None (not measured); `recipe`: what was trained
    and how (shown as given, e.g. design, tokens, steps, learning rates, the command).
    """
    stats = dict(sources.get("stats", {}))
    lines = ["# Default voice: model card", "",
             "The voice `myna say` speaks with when no reference is given. A small GPT-SoVITS model (myna's "
             "\"small\" preset) trained from scratch by `scripts/train_default_voice.py` on a synthetic corpus "
             "made only from freely licensed speech synthesizers; it imitates no real person's recorded voice.",
             "", "## Files", ""]
    files = _files(bundle)
    lines += _table(("file", "MB"), [(name, f"{size:.1f}") for name, size in files])
    lines += ["", f"Total: {sum(size for _, size in files):.1f} MB.", "", "## Training data", "",
              _cell(sources.get("note", "")), "",
              f"{stats.get('utterances', '-')} utterances, {stats.get('hours', '-')} hours, "
              f"{stats.get('speakers', '-')} speakers; held out (never trained on, used for the similarity test): "
              f"{', '.join(stats.get('heldout_speakers', [])) or 'none'}.", ""]
    lines += _table(("package", "version", "licence"),
                    [(p.get("package"), p.get("version"), p.get("licence")) for p in sources.get("packages", [])])
    if (bundle / SOURCES_FILE).is_file():
        lines += ["", f"{SOURCES_FILE} beside this card has each licence's terms and every speaker's settings."]
    lines += ["", "## Recipe", ""]
    lines += _table(("setting", "value"), list(recipe.items()))
    hours = {stage.removesuffix("_cpu_seconds"): seconds / 3600 for stage, seconds in progress.items()}
    lines += ["", "CPU hours per stage: " + (", ".join(f"{stage} {value:.2f}" for stage, value in hours.items())
                                             or "not recorded") + ".", "", "## Measured", ""]
    if measured is None:
        lines += ["Not measured for this bundle (`python benchmarks/voice_quality.py --voice-dir DIR --corpus CORPUS`)."]
    else:
        lines += [f"- Word error rate (Whisper tiny.en) over {measured.get('sentences', '-')} held-out sentences: "
                  f"**{_cell(measured.get('wer'))}**.",
                  f"- Real-time factor of synthesis on the machine it was measured on: {_cell(measured.get('rtf'))}."]
        similarity = measured.get("similarity") or {}
        if similarity:
            lines += ["", "Zero-shot clones: cosine similarity (GE2E) of each clone to its own reference and to the "
                      "closest other reference, and how often its own is the closest:", ""]
            lines += _table(("references", "voices", "own", "closest other", "own is closest"),
                            [(group, v.get("voices"), v.get("own"), v.get("closest_other"), v.get("closer_share"))
                             for group, v in similarity.items()])
        else:
            lines += ["- Speaker similarity: not measured."]
    lines += ["", "## Word error rate against training", "",
              "`resynth`: held-out clips decoded from their own tokens (the decoder alone); `full`: held-out "
              "sentences through the whole pipeline (GPT and decoder; prompted by the reference clip unless marked "
              "ref-free); `GPT held-out loss`: the GPT's teacher-forced loss on the held-out speakers' clips; "
              "`GPT follows text`: how much better its tokens for held-out sentences, prompted, align to their text "
              "than to another (the recipe's `follow` stage; about 0: they do not follow it).", ""]
    lines += _table(("SoVITS step", "GPT step", "CPU hours", "resynth WER", "full WER", "GPT held-out loss",
                     "GPT follows text"),
                    [(p.get("sovits_step"), p.get("gpt_step"), p.get("cpu_hours"), p.get("resynth_wer"),
                      f"{p['wer']:.3f} ref-free" if p.get("ref_free") and "wer" in p else p.get("wer"),
                      p.get("gpt_heldout_loss"), p.get("follow_heldout_prompted")) for p in curve])
    lines += ["", "## Limits", "",
              "- English only; the voices it learned from are synthetic, so it sounds synthetic.",
              "- A preview: judge it by the figures above, not by a promise.", ""]
    return "\n".join(lines)


def write_model_card(bundle: Path, *args, **kwargs) -> Path:
    """Write `render_model_card(bundle, ...)` to bundle/MODEL_CARD.md; returns its path."""
    path = Path(bundle) / CARD_FILE
    path.write_text(render_model_card(Path(bundle), *args, **kwargs), encoding="utf-8")
    return path
