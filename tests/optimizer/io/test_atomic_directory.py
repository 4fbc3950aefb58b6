"""Directories published whole, leftovers of interrupted runs cleaned, manifests checked."""

from __future__ import annotations

import json
import os

import pytest

from optimizer.errors import InputError
from optimizer.io.atomic import (
    MANIFEST,
    atomic_directory,
    check_replaceable,
    clean_leftovers,
    verify_manifest,
    write_manifest,
)


def test_a_whole_directory_replaces_the_old_one_or_leaves_it(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, whole=True) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("killed half-way")
    assert sorted(p.name for p in target.iterdir()) == ["stale.txt"]  # untouched
    with atomic_directory(target, whole=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old left
    # The merging mode keeps other entries.
    with atomic_directory(target) as staging:
        (staging / "more.txt").write_text("more")
    assert sorted(p.name for p in target.iterdir()) == ["more.txt", "new.txt"]
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(InputError, match="not a directory"), atomic_directory(file, whole=True):
        pass


def test_leftovers_of_dead_runs_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "out"
    dead = 2**22 + 12345  # above the default pid_max: no such process
    for name in (f".out.{dead}.abc.tmp", f".out.{dead}.xyz.old", f".out.{os.getpid()}.k.tmp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    (tmp_path / ".other.1.a.tmp").mkdir()
    removed = clean_leftovers(target)
    assert sorted(p.name for p in removed) == [f".out.{dead}.abc.tmp", f".out.{dead}.xyz.old"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".other.1.a.tmp", f".out.{os.getpid()}.k.tmp"]


def test_a_killed_file_write_is_cleaned_by_the_next(tmp_path):
    """atomic_path's temporary file of a dead run goes at the next write of the same name."""
    from optimizer.io.atomic import atomic_path

    dead = 2**22 + 54321
    (tmp_path / f".plan.parquet.{dead}.abc123.tmp").write_text("half")
    (tmp_path / f".plan.parquet.{os.getpid()}.live.tmp").write_text("running")
    (tmp_path / f".other.csv.{dead}.abc.tmp").write_text("another output's")
    with atomic_path(tmp_path / "plan.parquet") as tmp:
        assert tmp.name.startswith(f".plan.parquet.{os.getpid()}@")
        tmp.write_text("whole")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".other.csv.{dead}.abc.tmp", f".plan.parquet.{os.getpid()}.live.tmp",
                    "plan.parquet"]  # fmt: skip
    # A folder the tool owns (the model cache) is cleaned of every name's leftovers.
    (tmp_path / f".models-ab.{dead}.q1.tmp").mkdir()
    removed = clean_leftovers(tmp_path, every_name=True)
    assert sorted(p.name for p in removed) == [
        f".models-ab.{dead}.q1.tmp",
        f".other.csv.{dead}.abc.tmp",
    ]


def test_the_manifest_finds_every_kind_of_damage(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"abcdef" * 100)
    (tmp_path / "b.json").write_text("{}")
    write_manifest(tmp_path)
    verify_manifest(tmp_path, needed=("b.json", "sub/a.bin"))
    listed = json.loads((tmp_path / MANIFEST).read_text())["files"]
    assert set(listed) == {"b.json", "sub/a.bin"} and listed["b.json"]["bytes"] == 2
    with pytest.raises(InputError, match="c.json is not in _manifest.json"):
        verify_manifest(tmp_path, needed=("c.json",))
    a = tmp_path / "sub" / "a.bin"
    a.write_bytes(b"abcdeX" + b"abcdef" * 99)  # same size
    with pytest.raises(InputError, match="SHA-256") as caught:
        verify_manifest(tmp_path)
    assert str(a) in str(caught.value)
    a.write_bytes(b"abc")
    with pytest.raises(InputError, match="truncated"):
        verify_manifest(tmp_path)
    a.unlink()
    with pytest.raises(InputError, match="missing"):
        verify_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("[1, 2")
    with pytest.raises(InputError, match="damaged"):
        verify_manifest(tmp_path)
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(InputError, match="no _manifest.json"):
        verify_manifest(tmp_path)


def test_a_folder_holding_a_users_file_is_never_replaced(tmp_path):
    """Only what the writer writes, or what an earlier run's manifest lists, may go."""
    target = tmp_path / "out"
    check_replaceable(target, ["a.txt"])  # absent: fine
    target.mkdir()
    (target / "a.txt").write_text("earlier run")
    check_replaceable(target, ["*.txt"])
    (target / "mine.csv").write_text("the user's")
    with pytest.raises(InputError, match="holds 'mine.csv'"):
        check_replaceable(target, ["a.txt"])
    with pytest.raises(InputError, match="holds 'mine.csv'"):  # refused before any work
        with atomic_directory(target, whole=True, writes=["a.txt"]):
            raise AssertionError("the work must not start")
    assert (target / "mine.csv").read_text() == "the user's"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left
    # An entry an earlier run of the same writer listed in its manifest is the writer's.
    write_manifest(target, writer="w")
    check_replaceable(target, [], writer="w")
    with pytest.raises(InputError, match="holds 'a.txt'"):  # another writer's manifest
        check_replaceable(target, [], writer="other")
    (target / "mine.csv").unlink()
    with atomic_directory(target, whole=True, writes=["b.txt"], writer="w") as staging:
        (staging / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]


def test_a_manifest_guards_every_file_at_any_depth(tmp_path):
    """With the writer's manifest, a file it does not list is foreign, however deep."""
    target = tmp_path / "models"
    (target / "natural").mkdir(parents=True)
    (target / "natural" / "weights.pt").write_text("w")
    write_manifest(target, writer="models")
    check_replaceable(target, ["natural"], writer="models")
    (target / "natural" / "my_notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds 'natural/my_notes.txt'"):
        check_replaceable(target, ["natural"], writer="models")
    # A _manifest.json that is not ours (no writer, not format 1) protects nothing.
    (target / "natural" / "my_notes.txt").unlink()
    (target / MANIFEST).write_text(json.dumps({"files": ["code.py"]}))
    (target / "code.py").write_text("print()")
    with pytest.raises(InputError, match="holds 'code.py'"):
        check_replaceable(target, ["natural"], writer="models")


def test_a_run_killed_between_its_two_renames_loses_nothing(tmp_path, monkeypatch):
    """The earlier folder, renamed aside, is put back: by the failing run, or by the next."""
    from optimizer.io import atomic as atomic_module

    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("earlier")
    real, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic_module.os, "replace", second_fails)
    with pytest.raises(OSError), atomic_directory(target, whole=True) as staging:
        (staging / "a.txt").write_text("new")
    monkeypatch.setattr(atomic_module.os, "replace", real)
    assert (target / "a.txt").read_text() == "earlier"
    # SIGKILL between the renames: only the renamed-aside copy is left; the next run restores it.
    dead = 2**22 + 777
    aside = tmp_path / f".out.{dead}@{atomic_module._host()}.zz9.old"
    aside.mkdir()
    os.replace(target, aside / "previous")
    clean_leftovers(target)
    assert (target / "a.txt").read_text() == "earlier" and not aside.exists()


def test_paths_are_normalised_and_links_followed(tmp_path, monkeypatch):
    real = tmp_path / "shared"
    real.mkdir()
    (real / "a.txt").write_text("old")
    (tmp_path / "link").symlink_to(real)
    with atomic_directory(tmp_path / "link", whole=True, writes=["a.txt"]) as staging:
        (staging / "a.txt").write_text("new")
    assert (tmp_path / "link").is_symlink() and (real / "a.txt").read_text() == "new"
    with pytest.raises(InputError, match="root of the file system"):
        check_replaceable("/")
    (real / "mine.csv").write_text("x")
    monkeypatch.chdir(real)
    with pytest.raises(InputError, match="holds 'mine.csv'"):
        check_replaceable(".", ["a.txt"])


def test_a_file_in_the_way_is_refused_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        check_replaceable(tmp_path / "file")
    with pytest.raises(InputError, match="is a file, not a directory"):
        check_replaceable(tmp_path / "file" / "out")


def test_figures_folders_are_published_whole(tmp_path):
    """A figure of an earlier run does not survive beside new ones; a user's file stops it."""
    from optimizer.io import verify_manifest, write_figures

    class Figure:  # anything with matplotlib's savefig
        def __init__(self, text):
            self.text = text

        def savefig(self, path, **_):
            open(path, "w").write(self.text)

    target = tmp_path / "plots"
    write_figures({"old": Figure("1"), "kept": Figure("2")}, target)
    write_figures({"kept": Figure("3")}, target)
    assert sorted(p.name for p in target.iterdir()) == sorted(["kept.png", MANIFEST])
    assert (target / "kept.png").read_text() == "3"
    verify_manifest(target, ["kept.png"])
    (target / "notes.md").write_text("mine")
    with pytest.raises(InputError, match="holds 'notes.md'"):
        write_figures({"kept": Figure("4")}, target)
    assert (target / "kept.png").read_text() == "3"


def test_another_machines_leftovers_go_only_when_old(tmp_path):
    """A pid means nothing across machines sharing a folder: their staging goes after a day."""
    fresh = tmp_path / ".out.123@elsewhere.abc.tmp"
    stale = tmp_path / ".out.456@elsewhere.def.tmp"
    fresh.mkdir()
    stale.mkdir()
    old = os.stat(stale).st_mtime - 2 * 24 * 3600
    os.utime(stale, (old, old))
    assert clean_leftovers(tmp_path / "out") == [stale]
    assert fresh.exists()
