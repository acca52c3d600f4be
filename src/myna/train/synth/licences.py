"""The licence record of a synthetic corpus: which Debian package made which audio, under what terms.

The licence summaries below were written for myna after reading each package's
/usr/share/doc/PKG/copyright; at build time the installed version (dpkg-query), the copyright file's
SHA-256 and whether it still contains the phrase the summary rests on are recorded next to them.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from myna.atomic import atomic_write


@dataclass(frozen=True)
class Licence:
    """A package's licence as myna reads it, and a phrase of its copyright file that shows it."""

    name: str
    summary: str
    evidence: str


_EST = ("Free use, modification, distribution and sale, provided that notices are kept, changes are marked, "
        "the authors' names are kept and not used for endorsement. Covers the voice data, hence its audio.")
LICENCES: dict[str, Licence] = {
    "flite": Licence("CMU (BSD-like, 4 conditions)", "The flite program; " + _EST, "Carnegie Mellon University"),
    "libflite1": Licence("CMU (BSD-like, 4 conditions)",
                         "Holds the awb, rms, slt, kal and kal16 voices; " + _EST, "Carnegie Mellon University"),
    "festival": Licence("Festival/CSTR (BSD-like, 4 conditions)", "The festival program; " + _EST,
                        "Permission is hereby granted"),
    "festvox-us-slt-hts": Licence("EST-2003 / EST-2000, BSD-3-clause parts", "CMU ARCTIC slt HTS voice; " + _EST,
                                  "EST-2003"),
    "festvox-kallpc16k": Licence("Festvox diphone licence (BSD-like, 4 conditions)", "kal diphone voice; " + _EST,
                                 "Permission is hereby granted"),
    "festvox-kdlpc16k": Licence("Festvox diphone licence (BSD-like, 4 conditions)", "ked diphone voice; " + _EST,
                                "Permission is hereby granted"),
    "espeak-ng": Licence("GPL-3.0-or-later", "The espeak-ng program (run as a subprocess, not linked). The GPL "
                         "covers the program, not the speech it produces.", "GNU General Public License"),
    "espeak-ng-data": Licence("GPL-3.0-or-later", "espeak-ng voice and variant data; the GPL covers the data "
                              "files, not the speech produced with them.", "GNU General Public License"),
    "rubberband-cli": Licence("GPL-2.0-or-later", "The pitch/formant/tempo shifter (run as a subprocess, not "
                              "linked); its output audio is not covered by its licence.", "GPL-2+"),
}


def package_version(package: str) -> str | None:
    """The installed Debian version of `package`, or None when it is not installed (or dpkg is absent)."""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                              timeout=30, check=False)
    except FileNotFoundError:
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def package_record(package: str) -> dict[str, object]:
    """Version, licence summary and copyright-file evidence of one Debian package."""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    licence = LICENCES.get(package)
    record: dict[str, object] = {"package": package, "version": package_version(package),
                                 "copyright_file": str(copyright_file)}
    if licence is not None:
        record |= {"licence": licence.name, "summary": licence.summary}
    if copyright_file.is_file():
        data = copyright_file.read_bytes()
        record["copyright_sha256"] = hashlib.sha256(data).hexdigest()
        if licence is not None:
            record["evidence_found"] = licence.evidence.lower() in data.decode("utf-8", "replace").lower()
    return record


def write_sources(out: Path, speakers: list[dict[str, object]], extra_packages: list[str],
                  stats: dict[str, object]) -> tuple[Path, Path]:
    """Write OUT/sources.json and OUT/SOURCES.md: packages with licences, speakers with their shifts."""
    packages = sorted({p for s in speakers for p in s["packages"]} | set(extra_packages))  # type: ignore[union-attr]
    records = [package_record(p) for p in packages]
    document = {"note": "Synthetic corpus made by `myna data synth` from local, freely licensed voices only.",
                "packages": records, "speakers": speakers, "stats": stats}
    json_path, md_path = out / "sources.json", out / "SOURCES.md"
    atomic_write(json_path, json.dumps(document, indent=2) + "\n", parents=True)
    lines = ["# Sources of this synthetic corpus", "", document["note"], "", "## Packages", "",
             "| package | version | licence | notes |", "|---|---|---|---|"]
    for r in records:
        lines.append(f"| {r['package']} | {r['version']} | {r.get('licence', '?')} | {r.get('summary', '')} |")
    lines += ["", "## Speakers", "",
              "| speaker | base voice | family | engine | pitch (st) | formant ratio | tempo | split |",
              "|---|---|---|---|---|---|---|---|"]
    for s in speakers:
        lines.append(f"| {s['name']} | {s['base']} | {s['family']} | {s['engine']} | {s['pitch_semitones']} "
                     f"| {s['formant_ratio']} | {s['tempo']} | {s.get('split', '')} |")
    lines += ["", "## Totals", ""] + [f"- {key}: {value}" for key, value in stats.items()]
    atomic_write(md_path, "\n".join(lines) + "\n", parents=True)
    return json_path, md_path
