"""The local model folder: upstream's `pretrained_models` layout plus a record of what was pulled.

`ROOT/.myna/models.json` records each pulled file's sha256, size and modification time (so `list`
can tell cheaply whether a file changed since it was last hashed) and which versions are complete.
Interrupted downloads wait in `ROOT/.myna/staging/` and only ever reach their final path whole and
verified, by a rename.
"""

from __future__ import annotations

import errno
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from myna.atomic import atomic_write
from myna.errors import InputError, StorageError
from myna.weights.catalog import G2PW, G2PW_DIR, NEWEST, VERSION_FILES, VERSIONS, check_name, pull_command

META_DIR = ".myna"
_FORMAT = 1
_HASH_CHUNK = 8 * 2**20


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, read in 8 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def human_size(size: int | None) -> str:
    """Bytes as "1.23 GB" (decimal units, as the hubs show sizes)."""
    if size is None:
        return "size unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size} B"


def storage_error(exc: OSError, where: Path) -> StorageError:
    """A StorageError saying what went wrong with the disk at `where` and what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"no space left on the disk holding {where}: free some space and run the same "
                            "command again (finished files are kept, the interrupted one resumes)")
    if exc.errno == errno.EFBIG:
        return StorageError(f"{where}: file too large for this file system or the process's file-size limit")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        return StorageError(f"cannot write to {where} ({reason}): pull into a folder you can write to "
                            "with --dir DIR, or set MYNA_HOME")
    return StorageError(f"{where}: {exc.strerror or exc}")


@dataclass(frozen=True)
class PulledModel:
    """A complete pulled version: `root` is a pretrained_models folder (pass it as --model-dir)."""

    root: Path
    version: str
    g2pw: Path | None  # the G2PWModel folder, when pulled too


@dataclass(frozen=True)
class Status:
    """What `myna models list` shows for one pulled name."""

    name: str
    state: str  # "verified", "changed" (hash not checked since a file changed), "incomplete"
    size: int
    files: int


class ModelStore:
    """One model folder (default MYNA_HOME/models) and its record of pulled files."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.meta = self.root / META_DIR
        self.staging = self.meta / "staging"
        self._record_path = self.meta / "models.json"

    # -- the record ---------------------------------------------------------------------------------
    def load(self) -> dict:
        """The record (empty when nothing was pulled here); InputError if it is unreadable."""
        try:
            record = json.loads(self._record_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"format": _FORMAT, "files": {}, "pulled": {}, "started": {}}
        except (OSError, ValueError) as exc:
            raise InputError(f"{self._record_path}: unreadable ({exc}); delete it and pull again") from None
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise InputError(f"{self._record_path}: not a record this myna understands; delete it and pull again")
        record.setdefault("files", {})
        record.setdefault("pulled", {})
        record.setdefault("started", {})  # pulls begun and not finished (shown as incomplete)
        return record

    def save(self, record: dict) -> None:
        """Write the record atomically."""
        try:
            self.meta.mkdir(parents=True, exist_ok=True)
            atomic_write(self._record_path, json.dumps(record, indent=1, sort_keys=True) + "\n", durable=True)
        except OSError as exc:
            raise storage_error(exc, self.meta) from None

    def prepare(self) -> None:
        """Create the folder and its staging area, or raise a StorageError saying why not."""
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            probe = self.meta / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise storage_error(exc, self.root) from None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock (one pull or rm at a time); InputError if another holds it."""
        from filelock import FileLock, Timeout

        lock = FileLock(self.meta / "lock", timeout=0)
        try:
            with lock:
                yield
        except Timeout:
            raise InputError(f"another `myna models` command is working on {self.root}; wait for it to finish") from None

    @staticmethod
    def file_record(path: Path, sha256: str, origin: str) -> dict:
        """What the record keeps about a verified file."""
        st = path.stat()
        return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "origin": origin,
                "checked": datetime.now(UTC).isoformat(timespec="seconds")}

    def unchanged(self, record: dict, rel: str) -> bool:
        """True if `rel` exists with the size and modification time it had when last hashed."""
        entry = record["files"].get(rel)
        try:
            st = (self.root / rel).stat()
        except OSError:
            return False
        return bool(entry) and st.st_size == entry["size"] and st.st_mtime_ns == entry["mtime_ns"]

    # -- names and their files ----------------------------------------------------------------------
    def files_of(self, record: dict, name: str) -> tuple[str, ...]:
        """The files a version needs, or the unpacked G2PW files recorded at its pull."""
        if name == G2PW:
            return tuple(record["pulled"].get(G2PW, {}).get("files", ()))
        return VERSION_FILES[name]

    def complete(self, record: dict, name: str) -> bool:
        """True if `name` was pulled and all its files are still there (no hashing)."""
        if name not in record["pulled"]:
            return False
        return all((self.root / rel).is_file() and rel in record["files"] for rel in self.files_of(record, name))

    def statuses(self) -> list[Status]:
        """One Status per name pulled (or partly pulled) here, versions oldest first, then g2pw."""
        record = self.load()
        out = []
        for name in (*VERSIONS, G2PW):
            if name not in record["pulled"] and name not in record["started"]:
                continue
            files = self.files_of(record, name)
            present = [rel for rel in files if rel in record["files"] and (self.root / rel).is_file()]
            size = sum((self.root / rel).stat().st_size for rel in present)
            if len(present) < len(files) or not files:
                state = "incomplete"
            elif all(self.unchanged(record, rel) for rel in files):
                state = "verified"
            else:
                state = "changed"
            out.append(Status(name, state, size, len(present)))
        return out

    def locate(self, version: str | None = None) -> PulledModel:
        """The pulled `version` (default: the newest complete one); InputError naming the command to pull it."""
        record = self.load()
        if version is None:
            done = [v for v in VERSIONS if self.complete(record, v)]
            if not done:
                raise InputError(f"no models pulled in {self.root}: run {pull_command(NEWEST, self._dir_option())}, "
                                 "or pass --model-dir DIR (a folder laid out like upstream's pretrained_models)")
            version = done[-1]
        check_name(version)
        if version == G2PW or version not in VERSION_FILES:
            raise InputError(f"{version} is not a model version: choose one of {', '.join(VERSIONS)}")
        if not self.complete(record, version):
            raise InputError(f"{version} is not pulled in {self.root}: run {pull_command(version, self._dir_option())}")
        g2pw = self.root / G2PW_DIR if self.complete(record, G2PW) else None
        return PulledModel(self.root, version, g2pw)

    def _dir_option(self) -> str:
        """"--dir ROOT" unless this is the default folder (so a suggested command targets this folder)."""
        return "" if self.root == _default_root() else f"--dir {self.root}"

    def path_of(self, name: str) -> Path:
        """The folder to use for `name`: the model folder for a version, G2PWModel/ for g2pw."""
        check_name(name)
        if name == G2PW:
            if not self.complete(self.load(), G2PW):
                raise InputError(f"g2pw is not pulled in {self.root}: run `myna models pull VERSION --g2pw`")
            return self.root / G2PW_DIR
        return self.locate(name).root

    # -- verify and remove --------------------------------------------------------------------------
    def verify(self, names: list[str], report) -> bool:
        """Re-hash the files of `names` (default: all pulled); `report(rel, state)` per file; True if all match."""
        record = self.load()
        names = names or [n for n in (*VERSIONS, G2PW) if n in record["pulled"]]
        if not names:
            raise InputError(f"nothing pulled in {self.root}: run {pull_command(NEWEST)}")
        ok = True
        seen: set[str] = set()
        for name in names:
            check_name(name)
            if name not in record["pulled"]:
                raise InputError(f"{name} is not pulled in {self.root}: run {pull_command(name)}")
            for rel in self.files_of(record, name):
                if rel in seen:
                    continue
                seen.add(rel)
                path, entry = self.root / rel, record["files"].get(rel)
                if entry is None or not path.is_file():
                    ok, state = False, "missing"
                else:
                    good = sha256_of(path) == entry["sha256"]
                    ok, state = ok and good, "ok" if good else "MISMATCH"
                    if good:  # remember the hash was checked against this very file
                        record["files"][rel] = {**entry, **self.file_record(path, entry["sha256"], entry["origin"])}
                report(rel, state)
        self.save(record)
        return ok

    def remove(self, name: str) -> list[str]:
        """Delete the files only `name` uses (shared ones stay for other pulled versions); the removed paths."""
        check_name(name)
        if not self.meta.is_dir():
            raise InputError(f"{name} is not pulled in {self.root}")
        with self.locked():
            return self._remove(name)

    def _remove(self, name: str) -> list[str]:
        record = self.load()
        staged = [p for rel in self.files_of(record, name) for p in self._staged(rel)]
        if name not in record["pulled"] and name not in record["started"] and not any(p.exists() for p in staged):
            raise InputError(f"{name} is not pulled in {self.root}")
        keep = {rel for other in record["pulled"] if other != name for rel in self.files_of(record, other)}
        removed = []
        try:
            for rel in self.files_of(record, name):
                for part in self._staged(rel):
                    part.unlink(missing_ok=True)
                if rel in keep:
                    continue
                if (self.root / rel).is_file():
                    (self.root / rel).unlink()
                    removed.append(rel)
                record["files"].pop(rel, None)
                self._prune(self.root / rel)
            record["pulled"].pop(name, None)
            record["started"].pop(name, None)
            if name == G2PW:
                _remove_tree(self.root / G2PW_DIR)
        except OSError as exc:
            raise storage_error(exc, self.root) from None
        self.save(record)
        return removed

    def staged_part(self, rel: str) -> Path:
        """Where the interrupted download of `rel` waits (plus `.json` naming the bytes it expects)."""
        return self.staging / f"{rel}.part"

    def _staged(self, rel: str) -> tuple[Path, Path]:
        part = self.staged_part(rel)
        return part, part.with_name(part.name + ".json")

    def _prune(self, path: Path) -> None:
        """Remove the empty folders above `path`, up to the root."""
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)


def _default_root() -> Path:
    from myna.config import Settings

    return Settings.from_env().models_dir.expanduser()


def default_store() -> ModelStore:
    """The store in MYNA_HOME/models (~/.cache/myna/models)."""
    return ModelStore(_default_root())
