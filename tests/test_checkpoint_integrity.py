"""Checkpoints prove they are intact: a SHA-256 digest written with each one, checked on every load."""

from __future__ import annotations

import shutil
import zipfile

import pytest
import torch
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.training import CheckpointError
from snn_msa.training.checkpoint import DIGEST_MEMBER, load_checkpoint, save_checkpoint

TINY = ["--d-model", "16", "--heads", "2", "--batch-size", "16"]
DAMAGED = "the checkpoint is damaged"


def flip_middle(path, size: int = 4096) -> None:
    """Invert ``size`` bytes in the middle of the file (every bit of them)."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - size // 2
    data[start:start + size] = bytes(b ^ 0xFF for b in data[start:start + size])
    path.write_bytes(bytes(data))


def edit_member_keeping_crcs(path, dest) -> None:
    """Copy the archive with one byte of the weights changed, its CRC-32 recomputed: only the digest can tell."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            if "/data/" in info.filename and not info.filename.endswith("serialization_id") and len(data) > 8:
                data = bytes([data[0] ^ 0x01]) + data[1:]
            target.writestr(info, data)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny CLI training run: (data file, run folder)."""
    folder = tmp_path_factory.mktemp("integrity")
    data = folder / "tiny_sims.pkl"
    write_pickle(make_synthetic("sims", (24, 8, 8), seed=3), data)
    out = folder / "run"
    result = CliRunner().invoke(main, ["train", "--model", "sgmt-tav", "--data", str(data), "--epochs", "1",
                                       "--out", str(out), "--quiet", *TINY])
    assert result.exit_code == 0, result.output
    return data, out


def test_every_checkpoint_carries_a_digest_that_load_checks(run):
    for kind in ("best", "last"):
        path = run[1] / "seed-1111" / f"{kind}.pt"
        with zipfile.ZipFile(path) as archive:
            assert any(name.endswith("/" + DIGEST_MEMBER) for name in archive.namelist())
        assert load_checkpoint(path, kind)["integrity"] == "sha256"


def test_four_kilobytes_of_flipped_bits_are_refused_by_eval_energy_and_resume(run, tmp_path):
    data, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    for kind in ("best", "last"):
        flip_middle(copy / "seed-1111" / f"{kind}.pt")
    best = copy / "seed-1111" / "best.pt"
    with pytest.raises(CheckpointError, match=DAMAGED):
        load_checkpoint(best)
    for args in (["eval", "--checkpoint", str(best)], ["energy", "--checkpoint", str(best), "--samples", "2"],
                 ["train", "--model", "sgmt-tav", "--data", str(data), "--epochs", "2", "--out", str(copy), "--resume",
                  *TINY]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert DAMAGED in result.output and "DIFFERENT" not in result.output, result.output


def test_an_edit_that_keeps_the_zip_crcs_is_caught_by_the_digest(run, tmp_path):
    edited = tmp_path / "best.pt"
    edit_member_keeping_crcs(run[1] / "seed-1111" / "best.pt", edited)
    with pytest.raises(CheckpointError, match=f"{DAMAGED}: its SHA-256 digest is .*, not the .* stored when it was written"):
        load_checkpoint(edited)


def test_a_checkpoint_from_before_digests_is_read_after_its_crc_check(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"format": "snn-msa-checkpoint", "version": 1, "kind": "best", "state_dict": {"w": torch.ones(3000)}}, old)
    assert load_checkpoint(old)["integrity"] == "crc32"
    flip_middle(old, 64)
    with pytest.raises(CheckpointError, match=f"{DAMAGED}: its zip archive cannot be read \\(Bad CRC-32"):
        load_checkpoint(old)


def test_the_digest_covers_what_was_saved(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint({"state_dict": {"w": torch.arange(10.0)}}, path, "best")
    loaded = load_checkpoint(path, "best")
    assert torch.equal(loaded["state_dict"]["w"], torch.arange(10.0)) and loaded["integrity"] == "sha256"
