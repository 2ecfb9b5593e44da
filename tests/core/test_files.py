"""Output files are written whole or not at all, and never replaced without being asked."""

from __future__ import annotations

import pytest

from magan_gui.core.errors import MaganError, OutputError
from magan_gui.core.files import refuse_existing, write_atomically


def test_write_atomically_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    write_atomically(path, "first")
    write_atomically(path, b"second")
    assert path.read_text() == "second" and [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    write_atomically(path, "kept")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("magan_gui.core.files.os.replace", broken_replace)
    with pytest.raises(OutputError, match="could not be written .No space left"):
        write_atomically(path, "lost")
    assert path.read_text() == "kept" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_unwritable_place_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write there") as info:
        write_atomically(blocker / "out.txt", "x")
    assert isinstance(info.value, MaganError)


def test_refuse_existing(tmp_path):
    (tmp_path / "a").write_text("")
    refuse_existing(tmp_path / "b")
    refuse_existing(tmp_path / "a", force=True)
    with pytest.raises(OutputError, match="already exists .use --force"):
        refuse_existing(tmp_path / "b", tmp_path / "a")


def test_written_files_get_the_usual_permissions_and_replacements_keep_theirs(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    path = write_atomically(tmp_path / "result.json", "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask   # not mkstemp's private 0600
    path.chmod(0o640)
    write_atomically(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
