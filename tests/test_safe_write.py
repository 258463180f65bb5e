"""Every writer refuses a target that is not a regular file or a new path, and says a read-only folder
or a full disk in one line (``bci_stream.io.safe_write``); the commands say a bad ``--out`` before work."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bci_stream.io.safe_write import (
    WriteTargetError,
    check_writable_target,
    write_bytes,
    write_text,
    write_with,
)

INDEX = ["index", "--phantom", "--seed", "0", "--embed-dim", "8", "--classes", "4", "--images", "3"]


def _char_device(path: Path) -> Path:
    """A character device node with /dev/full's numbers (1, 7): writing it fails with ENOSPC."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    return path


@pytest.fixture(params=["char-device", "fifo"])
def special_file(request, tmp_path) -> Path:
    if request.param == "char-device":
        return _char_device(tmp_path / "myfull")
    os.mkfifo(tmp_path / "myfifo")
    return tmp_path / "myfifo"


def _same_node(path: Path, before: os.stat_result) -> bool:
    after = os.lstat(path)
    return stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino \
        and after.st_rdev == before.st_rdev


def _mount_tmpfs(folder: Path, options: str) -> None:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody can write: a read-only tmpfs as root (root passes every permission bit), else 0o555."""
    folder = tmp_path / "ro"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    _mount_tmpfs(folder, "ro,size=64k")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs: a full disk for anything bigger."""
    folder = tmp_path / "tiny"
    _mount_tmpfs(folder, "size=64k")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_device_node_or_fifo_target_is_refused_and_left_untouched(special_file):
    before = os.lstat(special_file)
    with pytest.raises(WriteTargetError, match="not a regular file") as err:
        write_bytes(special_file, b"x" * 1000)
    assert "\n" not in str(err.value) and str(special_file) in str(err.value)
    assert _same_node(special_file, before)
    assert sorted(p.name for p in special_file.parent.iterdir()) == [special_file.name]  # no temporary left


def test_a_symlink_to_a_device_is_refused_and_the_link_kept(tmp_path):
    device = _char_device(tmp_path / "dev")
    link = tmp_path / "link.safetensors"
    link.symlink_to(device)
    with pytest.raises(WriteTargetError, match="character device"):
        check_writable_target(link)
    assert link.is_symlink() and stat.S_ISCHR(os.stat(device).st_mode)


def test_bci_stream_index_refuses_a_device_node_out_in_one_line(special_file, capsys):
    from bci_stream.cli import main

    before = os.lstat(special_file)
    assert main(INDEX + ["--out", str(special_file)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("bci-stream index: error: refusing to write") and "not a regular file" in line
    assert _same_node(special_file, before)


def test_bci_train_export_refuses_a_device_node_before_exporting(tmp_path, capsys):
    from offline_training.cli import main

    device = _char_device(tmp_path / "model.onnx")
    before = os.lstat(device)
    assert main(["export", str(tmp_path / "no-run"), "--out", str(device)]) == 2  # said before the run is read
    assert "character device" in _one_line(capsys.readouterr().err)
    assert _same_node(device, before)


def test_a_read_only_folder_is_one_line(read_only_dir, capsys):
    from bci_stream.cli import main

    with pytest.raises(WriteTargetError, match=r"cannot write .*(read-only|permission denied)"):
        write_text(read_only_dir / "x.json", "{}")
    assert main(INDEX + ["--out", str(read_only_dir / "x.safetensors")]) == 2
    assert "read-only file system" in _one_line(capsys.readouterr().err) or os.geteuid() != 0


def test_bci_train_fit_into_a_read_only_folder_is_one_line_before_any_work(read_only_dir, capsys):
    from offline_training.cli import main

    rc = main(["fit", "--data", "phantom:subjects=1,classes=2,channels=4,images=2", "--epochs", "1",
               "--out", str(read_only_dir / "run")])
    assert rc == 2
    captured = capsys.readouterr()
    assert "cannot write" in _one_line(captured.err)
    assert "trials" not in captured.out  # the data was never loaded


def test_a_full_disk_is_one_line_naming_the_path_and_leaves_no_partial_file(tiny_disk, capsys):
    from bci_stream.cli import main

    target = tiny_disk / "big.bin"
    with pytest.raises(WriteTargetError, match="no space left") as err:
        write_bytes(target, b"x" * 1_000_000)
    assert str(target) in str(err.value)
    assert list(tiny_disk.iterdir()) == []
    assert main(INDEX[:-2] + ["--images", "50", "--out", str(tiny_disk / "g.safetensors")]) == 2  # safetensors' own
    line = _one_line(capsys.readouterr().err)  # error (SafetensorError "... os error 28") is said the same way
    assert "no space left" in line and "g.safetensors" in line and "SafetensorError" not in line
    assert list(tiny_disk.iterdir()) == []


def test_an_enospc_from_any_writer_becomes_one_line(tmp_path):
    def full(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    (tmp_path / "old.npz").write_bytes(b"old")
    with pytest.raises(WriteTargetError, match="no space left on the device; free space") as err:
        write_with(tmp_path / "old.npz", full)
    assert "\n" not in str(err.value)
    assert (tmp_path / "old.npz").read_bytes() == b"old"  # the old file stays whole
    assert [p.name for p in tmp_path.iterdir()] == ["old.npz"]


def test_a_regular_file_is_replaced_whole_with_the_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "predictions.npz"
    write_with(target, lambda tmp: np.savez_compressed(tmp, a=np.arange(3)))  # keeps the suffix: no .npz.npz
    write_with(target, lambda tmp: np.savez_compressed(tmp, a=np.arange(5)))
    assert np.load(target)["a"].tolist() == [0, 1, 2, 3, 4]
    assert [p.name for p in target.parent.iterdir()] == ["predictions.npz"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_an_error_of_the_writer_itself_is_not_disguised(tmp_path):
    def broken(tmp: Path) -> None:
        raise ValueError("bad tensor")

    with pytest.raises(ValueError, match="bad tensor"):
        write_with(tmp_path / "x.safetensors", broken)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(60)
def test_the_session_log_refuses_a_fifo_instead_of_blocking_and_appends_to_a_character_device(tmp_path):
    """The JSONL log appends in place (never renames), so /dev/null or /dev/full stay usable; a FIFO blocked
    the open until a reader came."""
    from bci_stream.live.session_log import JsonlLog, LogOpenError

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(LogOpenError, match="cannot write the session log: .*FIFO"):
        JsonlLog(tmp_path / "fifo", ["a"])
    log = JsonlLog(_char_device(tmp_path / "full"), ["a"])  # its full-disk path reports and keeps going
    log.close()
    assert stat.S_ISCHR(os.lstat(tmp_path / "full").st_mode)
