import os
import stat

import pytest

from digitsite.files import atomic_file, write_atomically


def test_a_file_written_atomically_replaces_the_old_one_with_its_mode_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "data" / "model.bin"  # the folder is made, private
    write_atomically(path, b"old")
    with atomic_file(path, mode=0o640) as file:
        file.write(b"new, ")
        assert path.read_bytes() == b"old"  # nothing shows until the block ends
        file.write(b"in two writes")
    assert path.read_bytes() == b"new, in two writes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["model.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "model.bin"
    write_atomically(path, b"old")
    with pytest.raises(RuntimeError), atomic_file(path) as file:
        file.write(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.bin"]


def test_without_replace_the_first_file_made_wins(tmp_path):
    path = tmp_path / "secret_key"
    with atomic_file(path, replace=False) as file:
        file.write(b"first")
    with pytest.raises(FileExistsError), atomic_file(path, replace=False) as file:
        file.write(b"second")
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["secret_key"]
