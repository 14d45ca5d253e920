"""ONE results store for ``run``, ``sweep`` and ``compare``: finished units written atomically, ``--resume``.

A run folder holds ``store.json`` (the command, its settings, a format version and, where a ``--data-dir`` was
given, the SHA-256 of the datasets' files found there) and ``units/``, one JSON
file per finished unit (a method x bits row, a sweep cell, a compare task, a batch of neurons), each written
to a temporary file, synced and renamed, the folder synced after (:func:`replace_synced`), so a unit is either
wholly there or absent whatever interrupts the run, a power loss included.
Resuming (``ResultStore.open(out, command, settings, resume=True)``) refuses different settings and says which
differ (a ``--data-dir`` alone may differ where the files found there have the recorded SHA-256; a setting an
older store lacks reads as :data:`ADDED`'s value, where it has one); a fresh run
refuses a folder that already holds a store (use ``--resume`` or another ``--out``). One process writes a folder
at a time (:class:`FolderLock`).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import re
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from qannealq.contract import read_repr
from qannealq.errors import InvalidArgumentError, StoreError

logger = logging.getLogger(__name__)

__all__ = ["ResultStore", "StoreError", "FolderLock", "atomic_path", "atomic_write", "replace_synced", "sync_folder",
           "settings_diff", "unit_key", "key_part", "check_distinct_keys", "refuse_file_out", "json_default",
           "OUT_REMEDY", "CACHE_REMEDY"]

FORMAT = 1


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """This qannealq: its version and, from a git checkout, the commit (``+changes`` where files differ from
    it). ``store.json`` lists every one that wrote units into the folder, so a study says what computed it."""
    import subprocess
    from importlib import metadata

    try:
        code = f"qannealq {metadata.version('qannealq')}"
    except metadata.PackageNotFoundError:
        code = "qannealq unknown"
    try:
        run = dict(cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=10, check=True)
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], **run).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
        return code + (f", git {commit}{'+changes' if changed else ''}" if commit else "")
    except (OSError, subprocess.SubprocessError):
        return code  # not a git checkout, or no git: the version alone


#: Settings a command has stored since it gained them, each with the value every run stored before then used: a
#: store without one reads as holding that value (it resumes with it, and refuses another, naming it). A setting
#: whose absence does not say how the stored units were computed is not here: compare's ``warm_start_reads``
#: (before it, only the first read of a call started warm), so such a store is refused.
ADDED: dict[str, dict[str, Any]] = {
    "run": {"quantize.objective": "preact", "quantize.inactive_weight": None},  # 494a15e, 2026-11-29
    # a preact sweep stores neither (SweepConfig.stored_settings): the same value, on both sides of a comparison
    "sweep": {"objective": "preact", "inactive_weight": None},
}
_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


#: What to do when a results file cannot be written (the default of :func:`atomic_write`).
OUT_REMEDY = "free disk space or choose another --out folder (units finished before this one are kept)"
#: The same for the dataset and model caches.
CACHE_REMEDY = "free disk space or set QANNEALQ_CACHE to a writable folder"


#: The file a process holds an exclusive lock on while it writes a results folder (see :class:`FolderLock`).
LOCK_NAME = ".lock"
OPENED: list[Path] = []
"""The folders whose stores this process opened, in order (the command line clears it per command and names the
last one when a command is interrupted)."""


class FolderLock:
    """An exclusive ``flock`` on ``root/.lock`` while a store of this process has ``root`` open.

    Two processes writing one results folder (a resume started twice, in two terminals or by a scheduler)
    would both compute, and on a QPU pay for, the same units. The second is refused, naming the first's pid.
    The operating system releases the lock when its process ends however it ends (Ctrl-C, a crash, SIGKILL),
    so a lock is never stale. Stores of one process on one folder share its lock (counted); it is released
    when the last of them is closed (:meth:`ResultStore.close`, which the commands call as they end) or
    garbage-collected. Where the file system has no locks (``ENOLCK``, some network
    mounts) or the folder is read-only, nothing is locked.

    The count is kept under a lock of the process: two threads opening one folder at once both found it not held,
    and the second's ``flock`` on a descriptor of its own failed against the first's, refused as "in use by
    another qannealq process" naming this process's own pid. Reentrant: a store's garbage collection releases
    from whatever thread happens to collect, inside an acquire too.
    """

    _held: dict[str, list[int]] = {}  # resolved root -> [fd, count]
    _counting = threading.RLock()

    @classmethod
    def acquire(cls, root: Path) -> str | None:
        """Hold ``root``'s lock (once more, where this process holds it); its key, or None where not lockable.

        Raises:
            StoreError: another process holds it.
        """
        key = str(Path(root).resolve())
        with cls._counting:
            return cls._acquire(root, key)

    @classmethod
    def _acquire(cls, root: Path, key: str) -> str | None:
        if key in cls._held:
            cls._held[key][1] += 1
            return key
        try:
            import fcntl
        except ImportError:  # not a POSIX system
            return None
        try:
            fd = os.open(Path(root) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a read-only folder: nothing can write it, so nothing to guard
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise StoreError(f"{root} is in use by another qannealq process{f' (pid {holder})' if holder else ''}: "
                             "two processes on one results folder would compute (and on a QPU pay for) the same "
                             "units; wait for it to end, or stop it, then --resume the folder") from None
        except OSError:  # no locks on this file system
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        cls._held[key] = [fd, 1]
        return key

    @classmethod
    def check(cls, root: Path) -> None:
        """Refuse ``root`` where another process holds its lock (:meth:`acquire`), holding nothing after.

        Raises:
            StoreError: another process holds it.
        """
        cls.release(cls.acquire(root))

    @classmethod
    @contextmanager
    def held(cls, root: Path | None) -> Iterator[None]:
        """``root``'s lock held for the block (nothing where ``root`` is None or not a folder). A command
        resuming a folder takes it right after its checks, before it prepares anything: two resumes started at
        the same moment both passed :meth:`check`, and the second was refused only when it opened the store,
        after loading or training its model (minutes). The store opened in the block shares the lock.

        Raises:
            StoreError: another process holds it.
        """
        key = cls.acquire(root) if root is not None else None
        try:
            yield
        finally:
            cls.release(key)

    @classmethod
    def release(cls, key: str | None) -> None:
        """One holder fewer of ``key`` (from :meth:`acquire`); the last one unlocks the folder."""
        if key is None:
            return
        with cls._counting:
            entry = cls._held.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] <= 0:
                del cls._held[key]
                os.close(entry[0])  # closing the descriptor releases the flock


if hasattr(os, "register_at_fork"):  # a forked child has no thread left to let go of its parent's lock
    os.register_at_fork(after_in_child=lambda: setattr(FolderLock, "_counting", threading.RLock()))


@contextmanager
def atomic_path(path: Path, remedy: str = OUT_REMEDY) -> Iterator[Path]:
    """A temporary path in ``path``'s folder (same suffix, so writers that go by it keep working) for the block
    to write; synced to disk and renamed onto ``path`` when the block ends (:func:`replace_synced`), removed when
    it fails or is interrupted, so ``path`` is either the old file or the complete new one, after a power loss too.

    Raises:
        StoreError: the folder is not writable or the disk is full; the message ends with ``remedy``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        replace_synced(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}; {remedy}") from exc
    except BaseException:  # Ctrl-C between the write and the rename: no temporary file left behind
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    """Remove a failed write's temporary file, if any: where it could not be made, its removal fails alike (a path
    over ``PATH_MAX``: ``ENAMETOOLONG``), and that second ``OSError`` replaced the write's :class:`StoreError`."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def replace_synced(tmp: Path, path: Path) -> None:
    """``os.replace(tmp, path)`` between two syncs to disk: ``tmp``'s content first (writers given a path, such as
    ``np.savez`` or ``savefig``, never synced it: after a power loss the rename could survive its data, an empty
    file taken for a complete one), then the folder (:func:`sync_folder`): a rename changes only the folder, so
    after a power loss an unsynced folder may show the old file (or none) though the new one was synced.
    ``tmp`` is opened for writing: Windows syncs (``FlushFileBuffers``) only a handle with write access, and
    refused a read-only one with ``EBADF``, failing every write; read-only where its writer made it so (POSIX
    syncs that).
    """
    try:
        fd = os.open(tmp, os.O_RDWR)
    except PermissionError:
        fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_folder(Path(path).parent)


def sync_folder(folder: Path) -> None:
    """``fsync`` the folder itself, so that its entries (a rename, a new file or folder) survive a power loss.

    A no-op where a folder cannot be opened (Windows) or its file system does not sync folders (``EINVAL``).
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str | bytes, remedy: str = OUT_REMEDY) -> None:
    """Write ``text`` (or bytes) to ``path`` through :func:`atomic_path` (synced to disk before the rename).

    Raises:
        StoreError: the folder is not writable or the disk is full (the temporary file is removed).
    """
    with atomic_path(path, remedy) as tmp, open(tmp, "wb" if isinstance(text, bytes) else "w") as fh:
        fh.write(text)


def _canonical(value: Any) -> Any:
    """Settings as plain JSON values (tuples -> lists, paths -> str), for comparison and storage."""
    return json.loads(json.dumps(value, default=json_default))


def json_default(value: Any) -> Any:
    """``json.dumps``' ``default`` for settings: a numpy (or torch) scalar as its Python value, an array as a list,
    anything else (a path) as its text. ``str`` alone stored ``bits=np.int64(4)`` as ``"4"``, which the resume
    then refused as not an integer."""
    if callable(getattr(value, "tolist", None)) and not isinstance(value, (str, bytes)):
        return value.tolist()  # np.int64(4) -> 4, np.array([4, 2]) -> [4, 2]
    return str(value)


#: A run's datasets, identified from its settings: ``{where: SHA-256}`` (:func:`qannealq.data.data_fingerprint`).
Fingerprint = Callable[[Mapping[str, Any]], "dict[str, str]"]


def _with_added(stored: Mapping[str, Any], command: str) -> dict:
    """``stored`` settings (a copy) holding each of :data:`ADDED`'s settings of ``command`` that they lack, as the
    value the runs stored before it used (one whose enclosing mapping is absent is left absent)."""
    settings = _canonical(dict(stored))
    for path, value in ADDED.get(command, {}).items():
        *parents, name = path.split(".")
        where: Any = settings
        for part in parents:
            where = where.get(part) if isinstance(where, dict) else None
        if isinstance(where, dict) and name not in where:
            where[name] = value
    return settings


def _fingerprint_diff(recorded: Mapping[str, str], found: Mapping[str, str]) -> str:
    """``where: stored -> found`` for each dataset whose SHA-256 differs (the first 12 hex digits)."""
    return "; ".join(f"{where or 'model'}: {str(recorded.get(where, '<none>'))[:12]} -> "
                     f"{str(found.get(where, '<none>'))[:12]}"
                     for where in sorted(set(recorded) | set(found)) if recorded.get(where) != found.get(where))


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Human-readable differences ``key: old -> new`` between two settings mappings (nested mappings are
    compared key by key: ``quantize.bits: [4] -> [2]``). Sampler options are stored as their values' ``repr``
    (:func:`qannealq.contract.redact`), compared as the values they read as (a store written before 2026-12-06 holds
    ``np.int64(2)`` where one now holds ``2``) and shown as stored: ``sampler_options.effort: 'fast' -> 'thorough'``.
    """
    old, new = _canonical(old), _canonical(new)
    stored_repr = "sampler_options." in f".{prefix}"

    def same(a: Any, b: Any) -> bool:
        if stored_repr and isinstance(a, str) and isinstance(b, str):
            return repr(read_repr(a)) == repr(read_repr(b))  # repr: 2 and 2.0, 1 and True stay apart
        return a == b

    def shown(value: Any) -> str:
        return value if stored_repr and isinstance(value, str) else repr(value)

    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, "<absent>"), new.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += settings_diff(a, b, f"{prefix}{k}.")
        elif not same(a, b):
            out.append(f"{prefix}{k}: {shown(a)} -> {shown(b)}")
    return out


def unit_key(**parts: Any) -> str:
    """A stable, file-safe key from named parts: ``unit_key(method="qubo", bits=4)`` -> ``bits=4_method=qubo``."""
    text = "_".join(f"{k}={parts[k]}" for k in sorted(parts))
    safe = _SAFE.sub("-", text)
    if len(safe) > 120:
        safe = safe[:100] + "-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    return safe


def key_part(text: str) -> str:
    """``text`` as a part of :func:`unit_key` that no other text shares: itself where the key keeps it as it is,
    else the key's cleaned text and a hash of ``text``. The key replaces characters other than letters, digits and
    ``._=-`` (so ``"fc 1"``, ``"fc/1"`` and ``"fc-1"`` all read ``fc-1``): two layers of a user's model so named
    shared one batch file, each overwriting the other's, so a resume solved both again."""
    text = str(text)
    safe = _SAFE.sub("-", text)
    return text if safe == text else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def refuse_file_out(root: Path) -> None:
    """Refuse an ``--out`` that names an existing file (its folder's creation failed with ``FileExistsError``,
    after the model's training): the results stores' and the instance export's one check.

    A path the system cannot look up (a name over 255 bytes: ``ENAMETOOLONG``) is refused too: ``exists()``
    raised its ``OSError``, a traceback before any work.

    Raises:
        InvalidArgumentError: ``root`` is a file, or cannot be looked up.
    """
    try:
        is_file = Path(root).exists() and not Path(root).is_dir()
    except OSError as exc:
        raise InvalidArgumentError(f"--out={str(root)!r} cannot be used as a folder ({exc.strerror or exc}): give "
                                   "a shorter or another folder path") from exc
    if is_file:
        raise InvalidArgumentError(f"--out={str(root)!r} is an existing file, not a folder: give a folder path")


def check_distinct_keys(what: str, names: Sequence[str]) -> None:
    """Refuse two ``names`` that differ only where a store key (:func:`unit_key`, letters, digits and ``._=-``)
    does not: their units would share one key, so instance ``n-0`` took the reference optimum computed for
    ``n 0`` (in memory too), a resume read backend ``my-sa``'s calls for ``my sa``'s, and a sweep's cell of
    ``qubo:my+sa`` overwrote that of ``qubo:my-sa`` (a resume then had the second alone, and never computed the
    first again).

    Raises:
        InvalidArgumentError: two such names, both named.
    """
    seen: dict[str, str] = {}
    for name in names:
        key = unit_key(name=name)
        if seen.get(key, name) != name:
            raise InvalidArgumentError(f"{what}: {seen[key]!r} and {name!r} differ only in characters a results key "
                                       "replaces (it keeps letters, digits and ._=-), so their results would be "
                                       "confused: rename one")
        seen[key] = name


@dataclass
class ResultStore:
    """A run folder's finished units (see the module docstring).

    Attributes:
        root: the run folder.
        command: ``run``, ``sweep`` or ``compare``.
        settings: the settings the units were computed with.
        resumed: keys of the readable units found when the store was opened (skipped by the command; an
            unreadable one is said in a warning and computed again).
    """

    root: Path
    command: str
    settings: dict
    resumed: list[str] = field(default_factory=list)

    @classmethod
    def check(cls, root: Path, command: str, settings: Mapping[str, Any], resume: bool = False,
              fingerprint: Fingerprint | None = None) -> None:
        """Every check of :meth:`open` without writing anything (so a command can fail before any work).

        Also refuses a folder that cannot be created or written (the nearest existing parent not writable), and a
        resumed one (or its ``units/``) that cannot be written: the resume trained the model and solved a layer
        before its first write failed.
        """
        root = Path(root)
        refuse_file_out(root)
        if resume:
            cls._reopen(root, command, _canonical(dict(settings)), write=False, fingerprint=fingerprint)
            FolderLock.check(root)  # another process on it: refused before any work
            for folder in (root, root / "units"):
                if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
                    raise StoreError(f"--resume {root}: {folder} is not writable; make it writable, or resume a "
                                     "copy of the run folder")
            return
        if (root / "store.json").exists():
            raise InvalidArgumentError(f"{root} already holds the results of a run: continue it with "
                                       f"--resume {root}, or give another --out folder")
        cls._refuse_stray_units(root)
        parent = root
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create the results folder {root}: {parent} is not writable; choose another "
                             "--out folder")

    @classmethod
    def stored_settings(cls, root: Path, command: str) -> dict:
        """The settings a ``command`` run stored in ``root`` (for ``--resume DIR`` without repeating options).

        Raises:
            InvalidArgumentError: no readable store there, or one of another command.
        """
        return _with_added(cls._saved(root, command).get("settings", {}), command)

    @staticmethod
    def _saved(root: Path, command: str) -> dict:
        """``store.json`` of a ``command`` run in ``root`` (see :meth:`stored_settings`)."""
        root = Path(root)
        meta = root / "store.json"
        if not meta.is_file():
            raise InvalidArgumentError(f"--resume {root}: no results store there (no store.json); start a new run "
                                       "with --out instead")
        try:
            saved = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(f"--resume {root}: store.json is unreadable ({exc}); start a new run") from exc
        if not isinstance(saved, dict) or not isinstance(saved.get("settings", {}), dict):  # edited: no AttributeError
            raise InvalidArgumentError(f"--resume {root}: store.json is not a results store's (its JSON is a "
                                       f"{type(saved).__name__} without a settings mapping); start a new run")
        if saved.get("command") != command:
            raise InvalidArgumentError(f"--resume {root}: that folder holds a {saved.get('command')!r} run, not "
                                       f"a {command!r} run; give a folder that `qannealq {command}` wrote, or start "
                                       "a new one with --out")
        return saved

    @classmethod
    def open(cls, root: Path, command: str, settings: Mapping[str, Any], resume: bool = False,
             fingerprint: Fingerprint | None = None) -> "ResultStore":
        """Create the store in ``root``, or with ``resume`` reopen it after checking the settings match.

        ``fingerprint`` (:func:`qannealq.data.data_fingerprint`) identifies the datasets the settings read from a
        folder given to them (``--data-dir``): a new store records it, and a resume whose settings differ in
        those folders alone is let through when the datasets found there have the recorded fingerprint (the
        folder moved); the store then reads them from the new folder.

        Raises:
            InvalidArgumentError: ``root`` is a file; a fresh run into a folder holding a store; resuming a
                folder without one, of another command, or with different settings (listed).
            StoreError: the folder cannot be created or written.
        """
        root = Path(root)
        refuse_file_out(root)
        meta = root / "store.json"
        settings = _canonical(dict(settings))
        if resume:
            if root.is_dir():
                lock = FolderLock.acquire(root)
                try:
                    return cls._reopen(root, command, settings, fingerprint=fingerprint)._holding(lock)
                except BaseException:
                    FolderLock.release(lock)
                    raise
            return cls._reopen(root, command, settings, fingerprint=fingerprint)  # refused: no store there
        if meta.exists():
            raise InvalidArgumentError(f"{root} already holds the results of a {command} run: continue it with "
                                       f"--resume {root}, or give another --out folder")
        cls._refuse_stray_units(root)
        try:
            (root / "units").mkdir(parents=True, exist_ok=True)
            sync_folder(root.parent)  # the new folder's own entry (store.json's write syncs root and its units/)
        except OSError as exc:
            raise StoreError(f"cannot create the results folder {root}: {exc.strerror or exc}; choose another "
                             "--out folder") from exc
        lock = FolderLock.acquire(root)
        try:
            if meta.exists():  # another process started a run here between the first look and the lock
                raise InvalidArgumentError(f"{root} already holds the results of a {command} run: continue it "
                                           f"with --resume {root}, or give another --out folder")
            data = fingerprint(settings) if fingerprint is not None else {}
            atomic_write(meta, json.dumps({"format": FORMAT, "command": command, "settings": settings,
                                           **({"data": data} if data else {}), "code": [code_version()]},
                                          indent=2))
        except BaseException:
            FolderLock.release(lock)
            raise
        return cls(root, command, settings)._holding(lock)

    @classmethod
    def _refuse_stray_units(cls, root: Path) -> None:
        """Refuse a new run into a folder whose ``units/`` holds units without a ``store.json`` (deleted or
        damaged, or a copied ``units/``): the commands take every stored unit as finished, so a run with other
        settings reported another run's rows as its own (``--num-calibration 64`` gave the 1024-sample row).

        Raises:
            InvalidArgumentError: such units are there (how many, and the first).
        """
        stray = list(cls(Path(root), "", {})._keys())
        if stray:
            raise InvalidArgumentError(
                f"{root} holds {len(stray)} result unit(s) in units/ ({stray[0]}.json...) but no store.json saying "
                "how they were computed: a new run there would take them as its own; give another --out folder, or "
                "remove units/ to start over")

    def _holding(self, lock: str | None) -> "ResultStore":
        """This store, holding ``lock`` (from :meth:`FolderLock.acquire`) until :meth:`close` or until it is
        garbage-collected."""
        OPENED.append(self.root)
        if lock is not None:
            self._release = weakref.finalize(self, FolderLock.release, lock)
        return self

    def close(self) -> None:
        """Let go of the folder's lock (the commands do when they end, also on an error: a traceback kept in a
        notebook holds the store); the units stay readable. Closing twice does nothing."""
        release = getattr(self, "_release", None)
        if release is not None:
            release()

    @classmethod
    def _reopen(cls, root: Path, command: str, settings: dict, write: bool = True,
                fingerprint: Fingerprint | None = None) -> "ResultStore":
        saved = cls._saved(root, command)
        diff = settings_diff(_with_added(saved.get("settings", {}), command), _with_added(settings, command))
        moved = [line for line in diff if line.split(":", 1)[0].endswith("data_dir")]
        recorded = saved.get("data") or {}
        if diff and len(moved) == len(diff) and recorded and fingerprint is not None:
            found = fingerprint(settings)
            if found != recorded:
                raise InvalidArgumentError(
                    f"--resume {root}: the datasets found with the new --data-dir are not the stored run's ("
                    + "; ".join(moved) + f"; their SHA-256 differ: {_fingerprint_diff(recorded, found)}); give the "
                    "folder that holds the same files, or start a new run")
            diff = []
            if write:
                saved = {**saved, "settings": settings}
                atomic_write(root / "store.json", json.dumps(saved, indent=2))
                logger.warning("--resume %s: the datasets are now read from the new folder (%s; the same files, by "
                               "their SHA-256)", root, "; ".join(moved))
        if diff:
            hint = ""
            if moved:
                hint = (" (the datasets' folder is part of the settings: give the stored --data-dir, made to lead to "
                        "the datasets' new place by a link if they moved" + (
                            "; this run was stored without the files' SHA-256, which lets a resume give the new "
                            "folder instead" if not recorded else "") + ")")
            if any(": '<absent>' -> " in line for line in diff):
                hint += (" (a setting shown '<absent>' did not exist in the qannealq that wrote the stored run, whose "
                         "units cannot be taken as computed with today's value: start a new run with --out)")
            if any(line.endswith(" -> '<absent>'") for line in diff):
                hint += (" (a setting shown -> '<absent>' is unknown to this qannealq: the run was written by a newer "
                         "version; resume it with that version)")
            raise InvalidArgumentError(f"--resume {root}: the settings differ from the stored run's ("
                                       + "; ".join(diff) + f"); resume with the same options or start a new run{hint}")
        store = cls(root, command, settings)
        if write:
            (root / "units").mkdir(exist_ok=True)
            cls._stamp(root, saved)
        store.resumed = list(store._keys())
        if write:  # the open itself (check() reads no unit): one cut short or edited is not done, so computed again
            for key in [k for k in store.resumed if not store.done(k)]:
                logger.warning("--resume %s: unit %s is unreadable; computing it again", root, key)
                store.resumed.remove(key)
        return store

    @classmethod
    def _stamp(cls, root: Path, saved: dict) -> None:
        """Add this qannealq (:func:`code_version`) to ``store.json``'s ``code`` where another one wrote the
        stored units, with a warning: the same settings under changed code may compute other results, and the
        resumed study then mixes both (a resume is let through: a fix elsewhere in the code should not cost the
        finished units)."""
        written, code = saved.get("code"), code_version()
        written = [str(c) for c in written] if isinstance(written, list) else []
        if code in written:
            return
        logger.warning("--resume %s: the stored units were written by %s, this is %s: where the code changed between "
                       "them the results mix both (start a new run with --out for one version's)", root,
                       " and ".join(written) or "a qannealq that recorded no version", code)
        atomic_write(root / "store.json", json.dumps({**saved, "code": [*written, code]}, indent=2))

    def _path(self, key: str) -> Path:
        return self.root / "units" / f"{key}.json"

    def _keys(self) -> Iterator[str]:
        units = self.root / "units"
        if not units.is_dir():
            return
        for path in sorted(units.glob("*.json")):
            if not path.name.startswith("."):  # another process's unit being written (atomic_path)
                yield path.stem

    def done(self, key: str) -> bool:
        """Whether unit ``key`` is finished (its file exists and is readable)."""
        return self.get(key) is not None

    def get(self, key: str) -> dict | None:
        """The stored record of ``key``, or None (an unreadable file counts as not done, and so does one whose
        JSON is not a unit: an edited ``null`` or list raised TypeError, which ended the resume)."""
        try:
            unit = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        record = unit.get("record") if isinstance(unit, dict) else None
        return record if isinstance(record, dict) else None

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        """Write one finished unit atomically (replacing a previous record of the same key)."""
        atomic_write(self._path(key), json.dumps({"key": key, "record": _canonical(dict(record))}))

    def discard(self, *keys: str) -> None:
        """Remove units ``keys`` (e.g. the batches of neuron rows superseded by their finished row); absent is
        fine. ``units/`` is synced after (once for all): an unlink changes only the folder, so after a power loss
        an unsynced folder could give a removed batch back, and the next resume counted it among the kept."""
        for key in keys:
            try:
                self._path(key).unlink(missing_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot remove {self._path(key)}: {exc.strerror or exc}") from exc
        if keys:
            sync_folder(self.root / "units")

    def records(self) -> list[dict]:
        """Every finished unit's record, ordered by key."""
        out = []
        for key in self._keys():
            record = self.get(key)
            if record is not None:
                out.append(record)
        return out
