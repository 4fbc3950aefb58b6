"""Write outputs so that nothing half-written is ever left under the final name."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
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
    "manifest_files",
    "MANIFEST",
]

#: The file listing every other file of a directory written whole, with its SHA-256 and size.
MANIFEST = "manifest.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only on success.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic.
    On any exception (KeyboardInterrupt included) the temporary file is removed; one a killed
    run left (``.<name>.<pid>.*.tmp``, its process gone) is removed by the next write of
    ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
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


def clean_leftovers(directory: str | Path, *, every_name: bool = False) -> list[Path]:
    """Remove what interrupted runs left beside ``directory``; return what was removed.

    Staging files and directories (``.<name>.<pid>.*.tmp``) and replaced directories
    (``.<name>.<pid>.*.old``) of :func:`atomic_path` and :func:`atomic_directory` whose
    process is gone; a live run's are kept. ``every_name``: those of any name in ``directory``
    itself (a folder the tool owns, such as the model cache), not only ``directory``'s own.
    """
    directory = Path(directory)
    folder, name = (
        (directory, r".+") if every_name else (directory.parent, re.escape(directory.name))
    )
    pattern = re.compile(rf"^\.{name}\.(\d+)\.[a-z0-9_]+\.(tmp|old)$")
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        found = pattern.match(entry.name)
        if found and not _alive(int(found.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _listed(directory: Path) -> set[str]:
    """Top-level names the manifest of ``directory`` lists (empty when it has none)."""
    try:
        files = json.loads((directory / MANIFEST).read_text())["files"]
        return {str(name).split("/", 1)[0] for name in files}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()


def check_replaceable(directory: str | Path, writes: Iterable[str] = ()) -> None:
    """Refuse to replace ``directory`` whole when it holds anything its writer did not write.

    A directory may be replaced when it does not exist, is empty, or holds only entries that
    its :data:`MANIFEST` lists (an earlier run of the same writer), entries matching
    ``writes`` (the names this run writes, shell patterns) and the manifest itself. Anything
    else is a user's file that a whole replacement would delete.

    Parameters
    ----------
    directory : path
    writes : iterable of str
        Top-level names (``fnmatch`` patterns) the writer produces.

    Raises
    ------
    InputError
        One line naming the directory and the first foreign entry; or the path is a file.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError("exists and is not a directory", source=directory)
    parent = next(p for p in directory.absolute().parents if p.exists())
    if not parent.is_dir():
        raise InputError(f"{parent} is a file, not a directory", source=directory)
    if not os.access(parent if not directory.exists() else directory.parent, os.W_OK | os.X_OK):
        raise InputError("cannot be written here (no permission)", source=directory)
    if not directory.is_dir():
        return
    patterns = (*writes, MANIFEST)
    listed = _listed(directory)
    for entry in sorted(directory.iterdir()):
        name = entry.name
        if name in listed or any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        raise InputError(
            f"holds {name!r}, which this command does not write; the folder is replaced whole, "
            "so choose an empty or new folder",
            source=directory,
        )


@contextlib.contextmanager
def atomic_directory(
    directory: str | Path, *, whole: bool = False, writes: Iterable[str] | None = None
) -> Iterator[Path]:
    """Yield a temporary sibling directory and publish it into ``directory`` on success.

    Nothing is published before everything was written, so an interrupted run leaves
    ``directory`` as it was (and :func:`clean_leftovers`, called first, removes what interrupted
    runs left). ``whole=False``: each entry is moved in with ``os.replace``; existing entries of
    the same names are replaced, other entries of ``directory`` are left alone. ``whole=True``:
    the directory is replaced as a whole (the old one renamed aside, the new one renamed in,
    the old one removed), so no entry of an earlier run survives and a reader sees the old
    directory, the new one, or, for an instant, none, never a mixture.

    ``writes`` (with ``whole=True``): the top-level names this run writes; an existing
    directory holding anything else is refused before any work (:func:`check_replaceable`),
    and again at publication, so a user's files are never deleted.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise InputError("exists and is not a directory", source=directory)
    if whole and writes is not None:
        writes = tuple(writes)
        check_replaceable(directory, writes)
    directory.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(directory)
    if not whole:
        directory.mkdir(exist_ok=True)
    prefix = f".{directory.name}.{os.getpid()}."
    staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=directory.parent))
    try:
        yield staging
        if whole:
            if writes is not None:
                check_replaceable(directory, (*writes, *(p.name for p in staging.iterdir())))
            old = None
            if directory.is_dir():
                old = Path(tempfile.mkdtemp(prefix=prefix, suffix=".old", dir=directory.parent))
                os.replace(directory, old / "previous")
            os.replace(staging, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            for item in sorted(staging.iterdir()):
                target = directory / item.name
                if item.is_dir() and target.is_dir():
                    shutil.rmtree(target)
                os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def write_manifest(directory: str | Path) -> Path:
    """Write :data:`MANIFEST` into ``directory``: every other file's SHA-256 and size.

    Call it last, once every file is written; :func:`verify_manifest` checks them on reading.
    """
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {
        p.relative_to(directory).as_posix(): {"sha256": _digest(p), "bytes": p.stat().st_size}
        for p in files
    }
    target = directory / MANIFEST
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps({"format": 1, "files": entries}, indent=1))
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
