"""`myna models pull`: plan, show the total, download (resumably), verify, then move into place.

Files already in the folder and unchanged since they were hashed are skipped; present files the record
does not vouch for are hashed against what the source announces. Each download lands in the staging
area, is checked against its hash (and myna's pin, when there is one) and only then renamed to its
final path, so the folder never holds a partial or unverified file under a model's name.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from myna.errors import InputError, IntegrityError, NetworkError, StorageError
from myna.weights.catalog import (
    G2PW,
    G2PW_ARCHIVE,
    G2PW_DIR,
    HF_MIRROR_ENDPOINT,
    PINS,
    SOURCES,
    VERSION_FILES,
    Pin,
    Source,
    check_name,
)
from myna.weights.download import Remote, fetch, https_remote, hub_remote, matches
from myna.weights.store import ModelStore, human_size, sha256_of, storage_error

_MAX_UNPACKED = 4 * 2**30  # refuse archives that would unpack to more than this (zip bombs)
_SPARE = 64 * 2**20  # free space kept beyond the download itself


@dataclass(frozen=True)
class Origin:
    """The resolved source of one pull: its endpoint, repositories and the pins that apply."""

    source: Source
    endpoint: str
    models_repo: str
    g2pw_repo: str
    pins: Mapping[str, Pin]


def resolve_origin(source: str, repo: str | None = None, endpoint: str | None = None,
                   pins: Mapping[str, Pin] | None = None) -> Origin:
    """Where `source` fetches from. `repo` replaces both repositories (a fork with the same layout; myna's
    pins then apply only to ModelScope, which has no other check); `endpoint` replaces the host."""
    if source not in SOURCES:
        raise InputError(f"unknown source {source!r}: choose one of {', '.join(SOURCES)}")
    spec = SOURCES[source]
    if endpoint is None:
        if source == "hf":
            from huggingface_hub import constants

            endpoint = constants.ENDPOINT  # HF_ENDPOINT, else https://huggingface.co
        elif source == "hf-mirror":
            endpoint = HF_MIRROR_ENDPOINT
        else:
            from myna.config import Settings

            endpoint = Settings.from_env().modelscope_endpoint
    if pins is None:
        pins = PINS if (repo is None or spec.kind == "https") else {}
    return Origin(spec, endpoint.rstrip("/"), repo or spec.models_repo, repo or spec.g2pw_repo, pins)


@dataclass
class _Item:
    """One file of the plan: the name it belongs to and, once resolved, what to fetch."""

    rel: str  # path under the model folder (G2PWModel.zip for the G2PW archive)
    name: str
    remote: Remote | None = None


def pull(names: Iterable[str], root: str | Path, source: str = "hf", *, repo: str | None = None,
         endpoint: str | None = None, pins: Mapping[str, Pin] | None = None, out: TextIO | None = None) -> Path:
    """Fetch the files of `names` (versions and/or "g2pw") into `root`; the folder, ready for --model-dir."""
    out = out if out is not None else sys.stderr
    names = list(dict.fromkeys(check_name(n) for n in names))
    if not names:
        raise InputError("name a version to pull: v1, v2, v2Pro or v2ProPlus")
    origin = resolve_origin(source, repo, endpoint, pins)
    store = ModelStore(root)
    store.prepare()
    with store.locked():
        record = store.load()
        plan = [_Item(rel, name) for name in names for rel in _wanted(store, record, name)]
        plan = list({item.rel: item for item in plan}.values())  # shared files once
        if plan:
            _resolve(plan, origin, store, record, out)
            plan = [item for item in plan if item.remote is not None]  # already here after all
        if plan:
            _announce(plan, names, origin, store, out)
            _download(plan, origin, store, record, out)
        for name in names:
            if all(rel in record["files"] and (store.root / rel).is_file() for rel in _needed(store, record, name)):
                record["started"].pop(name, None)
                entry = {"source": origin.source.name, "endpoint": origin.endpoint, "at": _now()}
                if name == G2PW:  # its files are known only once the archive is unpacked
                    entry["files"] = list(store.files_of(record, G2PW))
                record["pulled"][name] = entry
        store.save(record)
    done = ", ".join(names)
    out.write(f"myna models pull: {done} ready in {store.root}" + (" (nothing to download)" if not plan else "") + "\n")
    return store.root


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _needed(store: ModelStore, record: dict, name: str) -> tuple[str, ...]:
    return store.files_of(record, name) if name == G2PW else VERSION_FILES[name]


def _wanted(store: ModelStore, record: dict, name: str) -> list[str]:
    """The files of `name` that are not here verified-and-unchanged."""
    if name == G2PW:
        files = store.files_of(record, G2PW)
        fine = name in record["pulled"] and files and all(store.unchanged(record, rel) for rel in files)
        return [] if fine else [G2PW_ARCHIVE]
    return [rel for rel in VERSION_FILES[name] if not store.unchanged(record, rel)]


def _resolve(plan: list[_Item], origin: Origin, store: ModelStore, record: dict, out: TextIO) -> None:
    """Fill in each item's Remote; files already present with the right bytes are recorded, not fetched."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        missing = ", ".join(item.rel for item in plan)
        raise NetworkError(f"HF_HUB_OFFLINE is set, so nothing can be downloaded, and these files are not here "
                           f"yet: {missing}. Unset HF_HUB_OFFLINE to pull (pulled models work offline)")
    unpinned = [item.rel for item in plan if item.rel not in origin.pins]
    if origin.source.kind == "https" and unpinned:
        raise IntegrityError(
            f"--source {origin.source.name} serves files without announcing their hashes, so myna only downloads "
            f"files whose sha256 it pins, and it has no pin for: {', '.join(unpinned)}. Use --source hf or "
            "--source hf-mirror (the hub announces each file's sha256 and myna checks it)")
    for item in plan:
        repo = origin.g2pw_repo if item.name == G2PW else origin.models_repo
        pin = origin.pins.get(item.rel)
        if origin.source.kind == "https":
            remote = https_remote(origin.endpoint, repo, origin.source.revision, item.rel, pin.sha256, pin.size)
        else:
            remote = hub_remote(origin.endpoint, repo, origin.source.revision, item.rel)
            remote = _with_pin(remote, pin, origin)
        path = store.root / item.rel
        if item.rel != G2PW_ARCHIVE and path.is_file():
            digest = matches(path, remote)
            if digest is not None:  # present (copied in, or touched since): the right bytes, so keep them
                record["files"][item.rel] = store.file_record(path, digest, _origin_text(origin, remote))
                out.write(f"  {item.rel}: already here (sha256 checked)\n")
                continue
        item.remote = remote


def _with_pin(remote: Remote, pin: Pin | None, origin: Origin) -> Remote:
    """The hub's announced hash, cross-checked with myna's pin; IntegrityError before any download if they differ."""
    if pin is None:
        if remote.sha256 is None and remote.git_sha1 is None:
            raise IntegrityError(f"{remote.rel}: {origin.endpoint} announces no sha256 or git id for this file, "
                                 "so its bytes could not be checked; refusing to download it")
        return remote
    if remote.sha256 is not None and remote.sha256 != pin.sha256:
        raise IntegrityError(f"{remote.rel}: {origin.endpoint} announces sha256 {remote.sha256}, but the release "
                             f"has {pin.sha256} ({pin.page}); refusing to download it")
    if pin.size is not None and remote.size is not None and remote.size != pin.size:
        raise IntegrityError(f"{remote.rel}: {origin.endpoint} announces {remote.size} bytes, but the release has "
                             f"{pin.size} ({pin.page}); refusing to download it")
    return Remote(remote.rel, remote.url, remote.size, pin.sha256, None, remote.commit, remote.hub)


def _announce(plan: list[_Item], names: list[str], origin: Origin, store: ModelStore, out: TextIO) -> None:
    """Print what will be fetched and the total, and refuse early if the disk cannot hold it."""
    repos = sorted({origin.g2pw_repo if item.name == G2PW else origin.models_repo for item in plan})
    out.write(f"myna models pull: {', '.join(names)} from {origin.source.name} ({origin.endpoint}: "
              f"{', '.join(repos)}) into {store.root}\n")
    width = max(len(item.rel) for item in plan)
    for item in plan:
        out.write(f"  {item.rel:<{width}}  {human_size(item.remote.size)}\n")
    known = [item.remote.size for item in plan if item.remote.size is not None]
    resumed = sum(_part_size(store, item.rel) for item in plan)
    total = sum(known)
    note = "" if len(known) == len(plan) else " (+ files of unknown size)"
    note += f", {human_size(resumed)} of it already downloaded" if resumed else ""
    out.write(f"  total: {human_size(total)} in {len(plan)} file{'s' * (len(plan) != 1)}{note}\n")
    # the G2PW archive is unpacked next to itself before it is deleted: count its size twice
    unpacked = sum(item.remote.size or 0 for item in plan if item.rel == G2PW_ARCHIVE)
    need = total - resumed + unpacked + _SPARE
    free = shutil.disk_usage(store.staging).free
    if need > free:
        raise StorageError(f"not enough disk space in {store.root}: the download needs {human_size(need)}, "
                           f"{human_size(free)} is free; free some space or pull elsewhere with --dir DIR")


def _download(plan: list[_Item], origin: Origin, store: ModelStore, record: dict, out: TextIO) -> None:
    """Fetch, verify and move each planned file; the record is saved after each so an interruption loses little."""
    for name in {item.name for item in plan}:
        record["started"].setdefault(name, _now())  # `list` shows it as incomplete until it finishes
    store.save(record)
    total = sum(item.remote.size or 0 for item in plan)
    disabled = _bars_disabled(out)
    with tqdm(total=total, initial=sum(_part_size(store, item.rel) for item in plan), unit="B",
              unit_scale=True, desc="total", file=out, disable=disabled, position=0) as overall:
        bar = partial(_FileBar, overall=overall, file=out, disable=disabled, position=1, leave=False)
        for item in plan:
            part = store.staged_part(item.rel)
            digest = fetch(item.remote, part, bar)
            try:
                if item.rel == G2PW_ARCHIVE:
                    files = _unpack_g2pw(part, store)
                    record["pulled"].pop(G2PW, None)
                    for rel in files:
                        record["files"][rel] = store.file_record(store.root / rel, sha256_of(store.root / rel),
                                                                 f"{_origin_text(origin, item.remote)} ({G2PW_ARCHIVE})")
                    record["pulled"][G2PW] = {"files": files}
                    part.unlink()
                else:
                    final = store.root / item.rel
                    final.parent.mkdir(parents=True, exist_ok=True)
                    part.replace(final)
                    record["files"][item.rel] = store.file_record(final, digest, _origin_text(origin, item.remote))
                part.with_name(part.name + ".json").unlink(missing_ok=True)
            except OSError as exc:
                raise storage_error(exc, store.root) from None
            store.save(record)
            # tqdm.write keeps the bars intact on a terminal (it clears, prints, redraws)
            tqdm.write(f"  {item.rel}: done, {human_size(item.remote.size)}, {item.remote.expected()[:14]}... checked",
                       file=out)


class _FileBar(tqdm):
    """A per-file progress bar that also advances the total bar (huggingface_hub creates one per transfer)."""

    def __init__(self, *args, overall: tqdm, **kwargs):
        self._overall = overall
        super().__init__(*args, **kwargs)

    def update(self, n: float | None = 1) -> bool | None:
        self._overall.update(n)
        return super().update(n)


def _bars_disabled(out: TextIO) -> bool:
    from huggingface_hub.utils import are_progress_bars_disabled

    return are_progress_bars_disabled() or not (hasattr(out, "isatty") and out.isatty())


def _unpack_g2pw(archive: Path, store: ModelStore) -> list[str]:
    """Unpack a verified G2PWModel.zip into ROOT/G2PWModel (via staging); the unpacked files' paths."""
    target = store.root / G2PW_DIR
    work = store.staging / "G2PWModel.unpack"
    shutil.rmtree(work, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > _MAX_UNPACKED:
                raise IntegrityError(f"{G2PW_ARCHIVE}: would unpack to more than {human_size(_MAX_UNPACKED)}; refusing")
            for m in members:
                parts = Path(m.filename).parts
                if m.filename.startswith("/") or ".." in parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise IntegrityError(f"{G2PW_ARCHIVE}: unsafe entry {m.filename!r}; refusing")
            zf.extractall(work, members)
    except zipfile.BadZipFile as exc:
        raise IntegrityError(f"{G2PW_ARCHIVE}: not a zip archive ({exc})") from None
    found = [p.parent for p in work.rglob("*") if p.name.lower() == "g2pw.onnx"]
    if len(found) != 1:
        raise IntegrityError(f"{G2PW_ARCHIVE}: expected one g2pW.onnx inside, found {len(found)}")
    if target.exists():
        shutil.rmtree(target)
    found[0].replace(target)
    shutil.rmtree(work, ignore_errors=True)
    return sorted(str(p.relative_to(store.root)) for p in target.rglob("*") if p.is_file())


def _origin_text(origin: Origin, remote: Remote) -> str:
    commit = f"@{remote.commit}" if remote.commit else ""
    return f"{origin.source.name} {remote.url.split('?')[0]}{commit}"


def _part_size(store: ModelStore, rel: str) -> int:
    try:
        return store.staged_part(rel).stat().st_size
    except OSError:
        return 0
