"""Shared fixtures: the tiny seeded GPT-SoVITS v2 model set (built once per test session) and its clips."""

import importlib.util
from pathlib import Path

import pytest
import torch

from myna.models.sovits import SoVITS, SoVITSConfig
from myna.models.t2s import T2SConfig, T2SModel

_spec = importlib.util.spec_from_file_location("tiny_voice", Path(__file__).parent / "engine" / "tiny_voice.py")
kit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kit)


def pytest_configure(config) -> None:
    """Under pytest-xdist each worker takes one core: one torch thread each, so workers do not oversubscribe."""
    if hasattr(config, "workerinput"):
        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_set(tmp_path_factory) -> dict:
    """Files of the tiny v2 model set (gpt, sovits, hubert, bert) plus reference clips ("clips")."""
    root = tmp_path_factory.mktemp("tiny_voice")
    gpt_shapes = {k: v.shape for k, v in T2SModel(T2SConfig.from_dict(kit.GPT_CONFIG)).state_dict().items()}
    sovits_shapes = {k: v.shape for k, v in SoVITS(SoVITSConfig.from_dict(kit.SOVITS_HPS)).state_dict().items()}
    files = kit.write_model_set(root / "models", gpt_shapes, sovits_shapes)
    clips = [kit.write_reference_clip(root / f"ref{i}.wav", s, 100 + i) for i, s in enumerate(kit.REFERENCE_SECONDS)]
    return {**files, "clips": clips, "root": root}
