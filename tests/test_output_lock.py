"""One run per output folder: the lock, tried with two real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from snn_msa.cli import main
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.output_lock import HOLDER_NAME, OutputBusyError, hold_output, read_holder

TINY = ["--d-model", "16", "--heads", "2", "--batch-size", "16"]
HOLDER_SCRIPT = """
import sys, time
from snn_msa.output_lock import hold_output
with hold_output(sys.argv[1], command="holder-under-test"):
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(folder: Path) -> subprocess.Popen:
    """Another process that holds ``folder`` until it is killed."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER_SCRIPT, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    return holder


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)  # no clean-up runs: only the OS can drop the lock
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny_sims.pkl"
    write_pickle(make_synthetic("sims", (24, 8, 8), seed=3), path)
    return path


def test_a_second_process_stops_at_once_naming_the_folder_and_the_holder(tmp_path):
    folder = tmp_path / "run"
    holder = start_holder(folder)
    try:
        record = read_holder(folder)
        assert record["pid"] == holder.pid and record["command"] == "holder-under-test"
        start = time.perf_counter()
        with pytest.raises(OutputBusyError) as caught:
            with hold_output(folder):
                pytest.fail("the folder was entered while another process held it")
        assert time.perf_counter() - start < 5, "a busy folder must not be waited for"
        message = str(caught.value)
        assert str(folder) in message and f"pid {holder.pid}" in message and "holder-under-test" in message
        assert "\n" not in message
    finally:
        kill(holder)


def test_train_refuses_a_held_folder_in_one_line(tmp_path, tiny_file):
    folder = tmp_path / "busy"
    holder = start_holder(folder)
    try:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-c", "from snn_msa.cli import main; main()", "train", "--model", "sgmt-tav",
                   "--data", str(tiny_file), "--epochs", "1", "--out", str(folder), *TINY]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert f"{folder} is in use by another run: pid {holder.pid}" in result.stderr
        assert sorted(p.name for p in folder.iterdir()) == [".snn-msa.lock", HOLDER_NAME]  # nothing else written
    finally:
        kill(holder)


def test_after_a_killed_run_resume_takes_the_folder_over(tmp_path, tiny_file):
    folder = tmp_path / "run"
    base = ["train", "--model", "sgmt-tav", "--data", str(tiny_file), "--out", str(folder), *TINY]
    first = CliRunner().invoke(main, [*base, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    holder = start_holder(folder)  # stands for a run that is killed while it holds the folder
    try:
        busy = CliRunner().invoke(main, [*base, "--epochs", "2", "--resume"])
        assert busy.exit_code == 1 and "is in use by another run" in busy.output
    finally:
        kill(holder)
    resumed = CliRunner().invoke(main, [*base, "--epochs", "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"took over {folder} from pid {holder.pid}" in resumed.output and "resuming from" in resumed.output
    assert json.loads((folder / "results.json").read_text())["seeds"][0]["epochs_run"] == 2
    assert not (folder / HOLDER_NAME).exists()  # released at the end
    again = CliRunner().invoke(main, [*base, "--epochs", "2"])  # a plain rerun still asks for --resume or --overwrite
    assert again.exit_code == 1 and "--resume" in again.output and "--overwrite" in again.output


def test_a_process_passes_through_its_own_nested_hold(tmp_path):
    with hold_output(tmp_path / "run") as outer:
        with hold_output(tmp_path / "run") as inner:
            assert inner.folder == outer.folder
        assert read_holder(tmp_path / "run")["pid"] == os.getpid()  # the inner exit did not release it
    assert read_holder(tmp_path / "run") is None
