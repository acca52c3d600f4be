"""The voice captcha's parts that need no models: sentences, error rates, the challenge store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from myna.voices.consent import ChallengeStore, ConsentRefused, error_rate, normalize_words
from myna.voices.sentences import CONSENT_CLAUSE, LANGUAGES, challenge_text, combinations, random_sentence


@pytest.mark.parametrize("language", LANGUAGES)
def test_challenges_start_with_the_clause_and_vary(language):
    texts = {challenge_text(language) for _ in range(20)}
    assert len(texts) >= 18  # random: collisions are rare
    assert all(text.startswith(CONSENT_CLAUSE[language]) for text in texts)
    assert combinations(language) >= 10**6


def test_english_error_rate_ignores_case_punctuation_and_spelled_numbers():
    reference = "Seven purple rabbits painted the wooden ladder."
    assert error_rate(reference, "7 purple rabbits, painted the wooden ladder", "en") == 0.0
    assert error_rate(reference, "seven purple rabbits painted the ladder", "en") == pytest.approx(1 / 7)
    assert error_rate(reference, "something else entirely", "en") == 1.0
    assert normalize_words("Don't-stop  NOW!") == ["don't", "stop", "now"]


def test_chinese_and_japanese_use_characters():
    reference = random_sentence("zh")
    assert error_rate(reference, reference.replace("，", " "), "zh") == 0.0
    assert error_rate("我同意克隆我的声音", "我同意克隆我的聲音", "zh") == 0.0  # traditional characters count as the same
    assert error_rate("今日は晴れです", "今日は雨です", "ja") == pytest.approx(2 / 7)  # 晴れ -> 雨: two edits


def test_a_challenge_is_used_once_and_expires(tmp_path):
    store = ChallengeStore(tmp_path / "c.sqlite3")
    issued = store.issue("en", ttl=60, now=1000.0)
    taken = store.take(issued.id, now=1010.0)
    assert taken.text == issued.text and taken.language == "en"
    with pytest.raises(ConsentRefused) as replay:
        store.take(issued.id, now=1011.0)
    assert replay.value.check == "challenge_replayed"
    late = store.issue("en", ttl=60, now=1000.0)
    with pytest.raises(ConsentRefused) as expired:
        store.take(late.id, now=1061.0)
    assert expired.value.check == "challenge_expired" and "expired" in str(expired.value)
    with pytest.raises(ConsentRefused) as unknown:
        store.take("no-such-id", now=1000.0)
    assert unknown.value.check == "challenge_unknown"


def test_a_challenge_is_taken_once_across_processes(tmp_path):
    """Several processes race to use one challenge: exactly one wins."""
    store = ChallengeStore(tmp_path / "c.sqlite3")
    issued = store.issue("en", ttl=600, now=1000.0)
    code = ("import sys; from myna.voices.consent import ChallengeStore, ConsentRefused\n"
            "try:\n    ChallengeStore(sys.argv[1]).take(sys.argv[2], 1001.0); print('won')\n"
            "except ConsentRefused as e:\n    print(e.check)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store.path), issued.id], stdout=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outcomes == ["challenge_replayed"] * 3 + ["won"]
