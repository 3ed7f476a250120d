"""Full disks and I/O errors: one line naming the path, exit 1, no traceback, no partial file, for every writer.

The ``full_fs`` tests run on a real 2 MiB tmpfs, which needs root (``mount``);
elsewhere they are skipped. The others simulate the failing system call.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from snn_msa import atomic
from snn_msa.atomic import WriteError, write_atomic
from snn_msa.cli import main
from snn_msa.data.hdf5_store import write_store
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.training.checkpoint import load_checkpoint, save_checkpoint

TINY = ["--d-model", "16", "--heads", "2", "--batch-size", "16"]


@pytest.fixture
def full_fs(tmp_path):
    """A real 2 MiB tmpfs at ``tmp_path/small``; skipped where mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system until only about ``leave`` bytes are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / f"filler-{uuid.uuid4().hex}", "wb") as stream:
        stream.write(b"\0" * max(0, free - leave))


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.output.startswith("Error: "), result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


@pytest.fixture(scope="module")
def tiny_pickle(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny_sims.pkl"
    write_pickle(make_synthetic("sims", (24, 8, 8), seed=3), path)
    return path


# --- a real full file system ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["m.h5", "m.pkl"])
def test_data_synth_on_a_full_disk_says_how_much_space_it_needs(full_fs, name):
    result = CliRunner().invoke(main, ["data", "synth", "--like", "sims", "--out", str(full_fs / name)])
    message = one_line_error(result)
    assert str(full_fs / name) in message and "needs about" in message and "free" in message
    assert os.listdir(full_fs) == []  # no partial file, no temporary file


def test_data_convert_to_a_full_disk_is_refused_before_hdf5_starts(full_fs, tiny_pickle):
    result = CliRunner().invoke(main, ["data", "convert", str(tiny_pickle), str(full_fs / "x.h5")])
    message = one_line_error(result)
    assert "x.h5" in message and "needs about" in message
    assert os.listdir(full_fs) == []


def test_a_checkpoint_that_does_not_fit_keeps_the_previous_one(full_fs):
    path = full_fs / "best.pt"
    save_checkpoint({"state_dict": {"w": torch.ones(1000)}}, path, "best")
    before = path.read_bytes()
    with pytest.raises(WriteError, match=r"best.pt: could not write it: .*previous file is unchanged"):
        save_checkpoint({"state_dict": {"w": torch.ones(1_000_000)}}, path, "best")  # 4 MB on 2 MiB
    assert path.read_bytes() == before and os.listdir(full_fs) == ["best.pt"]
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], torch.ones(1000))


def test_writes_that_fail_part_way_leave_no_partial_file(full_fs, monkeypatch):
    """The free-space check passes (the data fits), then the disk fills up during the write."""
    fill(full_fs, leave=64 * 1024)
    monkeypatch.setattr(atomic, "require_free_space", lambda path, needed: None)
    with pytest.raises(WriteError, match=r"results.json: could not write it: no space left on the device"):
        write_atomic(full_fs / "results.json", "x" * 200_000)
    with pytest.raises(WriteError, match=r"data.pkl: could not write it: no space left on the device"):
        write_pickle(make_synthetic("sims", (4, 2, 2), seq_lens=(8, 10, 12)), full_fs / "data.pkl")
    assert [n for n in os.listdir(full_fs) if not n.startswith("filler-")] == []


def test_train_on_a_full_disk_is_one_line(full_fs, tiny_pickle):
    fill(full_fs, leave=32 * 1024)  # room for the lock, not for a checkpoint
    out = full_fs / "run"
    result = CliRunner().invoke(main, ["train", "--model", "sgmt-tav", "--data", str(tiny_pickle), "--epochs", "1",
                                       "--out", str(out), "--quiet", *TINY])
    message = one_line_error(result)
    assert f"{out}/seed-1111/best.pt: could not write it: it needs about" in message and "free" in message
    assert not list(out.glob("seed-1111/*.pt")) and not list(out.glob("**/*.part"))


# --- simulated failures (run everywhere) --------------------------------------------------------


def test_write_atomic_refuses_what_cannot_fit_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "free_bytes", lambda folder: 100)
    with pytest.raises(WriteError, match=r"table.md: could not write it: it needs about 1000 B .* has 100 B free"):
        write_atomic(tmp_path / "table.md", "x" * 1000)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "error, words",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "the disk quota is exceeded"),
        (OSError(errno.EIO, "Input/output error"), "Input/output error (EIO)"),
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"), "torch's writer stopped"),
    ],
)
def test_io_errors_while_writing_become_one_line_with_the_path(tmp_path, monkeypatch, error, words):
    write_atomic(tmp_path / "grid.csv", "old\n")

    def failing(fd):
        raise error

    monkeypatch.setattr(atomic.os, "fsync", failing)
    with pytest.raises(WriteError) as caught:
        write_atomic(tmp_path / "grid.csv", "new\n")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'grid.csv'}: could not write it: ") and words in message
    assert "\n" not in message and message.endswith("the previous file is unchanged.")
    assert (tmp_path / "grid.csv").read_text() == "old\n" and os.listdir(tmp_path) == ["grid.csv"]


def test_other_errors_inside_a_write_pass_through_unchanged(tmp_path):
    with pytest.raises(KeyError):
        with atomic.atomic_path(tmp_path / "x.bin"):
            raise KeyError("not an I/O problem")
    assert os.listdir(tmp_path) == []


def test_an_hdf5_write_checks_the_free_space_first(tmp_path, monkeypatch):
    seen = {}

    def no_room(path, needed):
        seen["needed"] = needed
        raise WriteError(f"{path}: could not write it")

    monkeypatch.setattr(atomic, "require_free_space", no_room)
    data = make_synthetic("sims", (4, 2, 2), seq_lens=(8, 10, 12))
    with pytest.raises(WriteError):
        write_store(data, tmp_path / "x.h5")
    arrays = sum(v.nbytes for split in data.values() for v in split.values() if hasattr(v, "nbytes"))
    assert seen["needed"] >= arrays and os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic, "tempfile", SimpleNamespace(mkstemp=denied))
    result = CliRunner().invoke(main, ["data", "synth", "--like", "sims", "--n", "4,2,2", "--out", str(tmp_path / "s.pkl")])
    assert "permission denied" in one_line_error(result)
