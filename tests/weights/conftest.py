"""Fixtures: a fake hub on loopback serving tiny repos under upstream's real file names."""

from __future__ import annotations

import pytest
from fakehub import TEST_REPO, FakeHub, random_release


@pytest.fixture
def release() -> dict[str, bytes]:
    return random_release()


@pytest.fixture
def hub(release):
    """A fake hub serving the random release as TEST_REPO (and as the real repo name, to test pins)."""
    with FakeHub({TEST_REPO: release, "lj1995/GPT-SoVITS": release}) as server:
        yield server


@pytest.fixture
def myna_env(tmp_path, hub) -> dict:
    """MYNA_HOME in a temporary folder, HF_ENDPOINT at the fake hub."""
    return {"MYNA_HOME": str(tmp_path / "home"), "HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf")}
