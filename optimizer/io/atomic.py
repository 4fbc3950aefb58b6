"""Write outputs so that nothing half-written is ever left under the final name."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from optimizer.errors import InputError

__all__ = [
    "atomic_path",
    "atomic_directory",
    "write_manifest",
    "verify_manifest",
    "clean_leftovers",
    "check_replaceable",
    "check_parent",
    "check_not_input",
    "manifest_files",
    "MANIFEST",
    "STALE_SECONDS",
]

#: The file listing every other file of a directory written whole, with its SHA-256 and size.
#: Its leading underscore hides it from dataset readers (Spark, pyarrow, Hive), as ``_SUCCESS``.
MANIFEST = "_manifest.json"


#: A leftover of a run on another machine (shared folders) is removed after this many seconds.
STALE_SECONDS = 24 * 3600


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    """The machine's name as it appears in staging names (letters, digits, '-')."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def _tag() -> str:
    """``<pid>@<host>``: who owns a staging file or folder."""
    return f"{os.getpid()}@{_host()}"


def _normal(path: str | Path) -> Path:
    """``path`` absolute and normalised (no ``.``/``..``), a final symlink followed."""
    path = Path(os.path.abspath(path))
    if path.is_symlink():
        path = path.resolve()
    if path.parent == path:
        raise InputError("is the root of the file system; choose a folder", source=path)
    return path


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a directory) to disk, so a rename after it survives power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic;
    it is flushed to disk first, and the directory after. On any exception (KeyboardInterrupt
    included) the temporary file is removed; one a killed run left
    (``.<name>.<pid>@<host>.*.tmp``, its process gone) is removed by the next write of ``path``.
    """
    path = _normal(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_tag()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, path)
        _fsync(path.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gone(entry: Path, pid: int, host: str | None) -> bool:
    """Whether the run that left ``entry`` is over: its pid gone here, or old elsewhere."""
    if host is None or host == _host():
        return not _alive(pid)
    try:
        return time.time() - entry.lstat().st_mtime > STALE_SECONDS
    except OSError:
        return False


def clean_leftovers(directory: str | Path, *, every_name: bool = False) -> list[Path]:
    """Remove what interrupted runs left beside ``directory``; return what was removed.

    Staging files and directories (``.<name>.<pid>@<host>.*.tmp``) and replaced directories
    (``.<name>.<pid>@<host>.*.old``) of :func:`atomic_path` and :func:`atomic_directory` whose
    run is over (its pid gone on this machine; older than :data:`STALE_SECONDS` when written
    from another machine sharing the folder); a live run's are kept. A replaced directory whose
    run died before the new one was renamed in is put back where it was, not removed.
    ``every_name``: those of any name in ``directory`` itself (a folder the tool owns, such as
    the model cache), not only ``directory``'s own.
    """
    directory = _normal(directory)
    folder = directory if every_name else directory.parent
    name = r".+" if every_name else re.escape(directory.name)
    pattern = re.compile(
        rf"^\.(?P<name>{name})\.(?P<pid>\d+)(?:@(?P<host>[A-Za-z0-9-]+))?\.[a-z0-9_]+"
        r"\.(?P<kind>tmp|old)$"
    )
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        found = pattern.match(entry.name)
        if not found or not _gone(entry, int(found["pid"]), found["host"]):
            continue
        target, previous = folder / found["name"], entry / "previous"
        if found["kind"] == "old" and previous.is_dir() and not target.exists():
            os.replace(previous, target)  # the run died between its two renames: undo the first
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _listed(directory: Path, writer: str) -> set[str] | None:
    """The files ``writer``'s manifest in ``directory`` lists; None when it is not one."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
        files = data["files"]
        if data.get("format") != 1 or data.get("writer") != writer or not isinstance(files, dict):
            return None
        if not all(
            isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
        ):
            return None
        return {str(name) for name in files}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _foreign(directory: Path, writes: tuple[str, ...], writer: str) -> str | None:
    """The first entry of ``directory`` its writer did not write, or None."""
    listed = _listed(directory, writer)
    if listed is None:  # no manifest of this writer: the names it writes, at the top
        for entry in sorted(directory.iterdir()):
            if not any(fnmatch.fnmatchcase(entry.name, p) for p in writes):
                return entry.name
        return None
    folders = {part for name in listed for part in _parents(name)}
    for path in sorted(directory.rglob("*")):  # with a manifest: every file must be listed
        name = path.relative_to(directory).as_posix()
        if path.is_dir() and not path.is_symlink():
            if name not in folders and not any(fnmatch.fnmatchcase(name, p) for p in writes):
                return name
        elif name != MANIFEST and name not in listed:
            return name
    return None


def _parents(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def check_parent(path: str | Path, source: str | Path | None = None) -> None:
    """Refuse an output ``path`` whose nearest existing ancestor is a file (one line).

    ``source``: the name the error gives (default ``path``).
    """
    path = Path(path)
    parent = next(p for p in path.absolute().parents if p.exists())
    if not parent.is_dir():
        raise InputError(f"{parent} is a file, not a directory", source=source or path)


def check_not_input(out: str | Path, *inputs: str | Path | None) -> None:
    """Refuse an output that is one of this run's inputs, holds one, or lies inside one.

    Replacing an input whole (a folder written over the dataset it is read from) would lose
    the input, and the run with it.
    """
    target = Path(out).resolve()
    for given in inputs:
        if given is None:
            continue
        read = Path(given).resolve()
        if target == read or read.is_relative_to(target) or target.is_relative_to(read):
            raise InputError(f"is where this run reads {given}; write the output elsewhere",
                             source=out)  # fmt: skip


def check_replaceable(directory: str | Path, writes: Iterable[str] = (), writer: str = "") -> None:
    """Refuse to replace ``directory`` whole when it holds anything its writer did not write.

    A directory may be replaced when it does not exist, is empty, or holds only what an
    earlier run of the same ``writer`` listed in its :data:`MANIFEST` (every file, at any
    depth), or, without such a manifest, only top-level entries matching ``writes``. Anything
    else is a user's file that a whole replacement would delete.

    Parameters
    ----------
    directory : path
    writes : iterable of str
        Top-level names (``fnmatch`` patterns) the writer produces, its manifest included.
    writer : str
        Who writes the folder (``"world"``, ``"models"``, ...), as :func:`write_manifest` records.

    Raises
    ------
    InputError
        One line naming the directory and the first foreign entry; the path is a file, inside
        a file, the root, or in a folder that cannot be written.
    """
    given = Path(directory)
    directory = _normal(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError("exists and is not a directory", source=given)
    check_parent(directory, given)
    parent = next(p for p in directory.parents if p.exists())
    if not os.access(parent if not directory.exists() else directory.parent, os.W_OK | os.X_OK):
        raise InputError("cannot be written here (no permission)", source=given)
    if not directory.is_dir():
        return
    foreign = _foreign(directory, (*writes, MANIFEST), writer)
    if foreign is not None:
        raise InputError(
            f"holds {foreign!r}, which this command does not write; the folder is replaced "
            "whole, so choose an empty or new folder",
            source=given,
        )


@contextlib.contextmanager
def atomic_directory(
    directory: str | Path,
    *,
    whole: bool = False,
    writes: Iterable[str] | None = None,
    writer: str = "",
) -> Iterator[Path]:
    """Yield a temporary sibling directory and publish it into ``directory`` on success.

    Nothing is published before everything was written (and flushed to disk), so an
    interrupted run leaves ``directory`` as it was (and :func:`clean_leftovers`, called first,
    removes what interrupted runs left). ``whole=False``: each entry is moved in with
    ``os.replace``; existing entries of the same names are replaced, other entries of
    ``directory`` are left alone. ``whole=True``: the directory is replaced as a whole (the old
    one renamed aside, the new one renamed in, the old one removed), so no entry of an earlier
    run survives and a reader sees the old directory, the new one, or, for an instant, none,
    never a mixture; if the second rename fails the first is undone, and if the run dies
    between the two the next run puts the old directory back.

    ``writes`` and ``writer`` (with ``whole=True``): the top-level names this run writes and
    who writes them; an existing directory holding anything else is refused before any work
    (:func:`check_replaceable`), and again at publication, so a user's files are never deleted.
    ``writes=None``: no check (a folder the tool owns, such as a model cache entry).
    """
    given = Path(directory)
    directory = _normal(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError("exists and is not a directory", source=given)
    if whole and writes is not None:
        writes = tuple(writes)
        check_replaceable(directory, writes, writer)
    directory.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(directory)
    if not whole:
        directory.mkdir(exist_ok=True)
    prefix = f".{directory.name}.{_tag()}."
    staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=directory.parent))
    try:
        yield staging
        for path in (*staging.rglob("*"), staging):
            if not path.is_symlink():
                _fsync(path)
        if whole:
            if writes is not None:
                check_replaceable(directory, writes, writer)
            old = None
            try:
                if directory.is_dir():
                    old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=directory.parent))
                    os.replace(directory, old / "previous")
                os.replace(staging, directory)
            except BaseException:
                if old is not None and (old / "previous").is_dir() and not directory.exists():
                    os.replace(old / "previous", directory)  # undo the first rename
                raise
            _fsync(directory.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            for item in sorted(staging.iterdir()):
                target = directory / item.name
                if item.is_dir() and target.is_dir():
                    shutil.rmtree(target)
                os.replace(item, target)
            _fsync(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_manifest(directory: str | Path, writer: str = "") -> Path:
    """Write :data:`MANIFEST` into ``directory``: every other file's SHA-256 and size.

    Call it last, once every file is written; :func:`verify_manifest` checks them on reading.
    ``writer`` names who wrote the folder, so that only the same writer replaces it whole
    (:func:`check_replaceable`).
    """
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {
        p.relative_to(directory).as_posix(): {"sha256": _digest(p), "bytes": p.stat().st_size}
        for p in files
    }
    target = directory / MANIFEST
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"format": 1, "writer": writer, "files": entries}, indent=1))
    return target


def manifest_files(directory: str | Path) -> list[str]:
    """Check ``directory`` whole (:func:`verify_manifest`, nothing unlisted); its files.

    Raises
    ------
    InputError
        As :func:`verify_manifest`, or a file is present that the manifest does not list.
    """
    directory = Path(directory)
    verify_manifest(directory)
    listed = set(json.loads((directory / MANIFEST).read_text())["files"])
    for path in sorted(directory.rglob("*")):
        name = path.relative_to(directory).as_posix()
        if path.is_file() and name != MANIFEST and name not in listed:
            raise InputError(f"not in {MANIFEST}: added after the folder was written", source=path)
    return sorted(listed)


def verify_manifest(directory: str | Path, needed: Iterable[str] = ()) -> None:
    """Check every file :data:`MANIFEST` lists (present, same size, same SHA-256).

    Parameters
    ----------
    directory : path
    needed : iterable of str
        Relative paths that must be listed (what the reader is about to read).

    Raises
    ------
    InputError
        One line naming the file and what is wrong: no manifest, a damaged manifest, a file
        missing, truncated or changed, or a needed file the manifest does not list.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(
            f"no {MANIFEST}: not written whole by this version (write it again)", source=directory
        )
    try:
        files = json.loads(path.read_text())["files"]
        listed = {str(k): (str(v["sha256"]), int(v["bytes"])) for k, v in files.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"damaged ({type(exc).__name__})", source=path) from None
    for name in needed:
        if name not in listed:
            raise InputError(f"{name} is not in {MANIFEST}", source=directory)
    for name, (digest, size) in listed.items():
        file = directory / name
        if not file.is_file():
            raise InputError(f"missing (listed in {MANIFEST})", source=file)
        if file.stat().st_size != size:
            raise InputError(
                f"{file.stat().st_size} bytes, {size} written: truncated or changed", source=file
            )
        if _digest(file) != digest:
            raise InputError("changed since it was written (SHA-256 differs)", source=file)
