"""The cluster path of the experiments against a real PostgreSQL server: workers sharing a study in a database.

Starts its own PostgreSQL server (Debian's ``postgresql`` package: ``apt-get
install -y postgresql``) in a temporary folder on a free port, then:

1. two ``snn-msa grid`` workers started at once on one database study finish a
   2 x 2 grid (1 seed, tiny synthetic data): each trial trained exactly once;
2. a worker killed with SIGKILL mid-trial, and another started after it, finish
   the grid of a second study with the same ``grid.csv`` as an uninterrupted run
   on a journal file;

and stops the server. Needs the driver: ``pip install 'snn-msa[postgresql]'``.
Run as root, the server runs as the ``postgres`` user the package creates.

    python benchmarks/grid_postgres.py
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["--scale1", "0.5,2", "--strength", "0,0.01", "--epochs", "2", "--batch-size", "16", "--d-model", "16",
        "--heads", "2"]


def server_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        sys.exit(f"{name} not found: install Debian's server first (apt-get install -y postgresql).")
    return found[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(command: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


def worker(out: Path, data: str, storage: str, study: str, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-c", "from snn_msa.cli import main; main()", "grid", *GRID, "--data", data,
               "--out", str(out), "--storage", storage, "--study", study, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def trials_of(storage: str, study: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)


def complete_keys(trials) -> list[tuple]:
    from optuna.trial import TrialState

    return sorted((t.params["scale1"], t.params["strength"], t.params["seed"]) for t in trials
                  if t.state == TrialState.COMPLETE)


def main() -> None:
    from snn_msa.data.synthetic import make_synthetic, write_pickle

    user = "postgres" if os.geteuid() == 0 else None
    work = Path(tempfile.mkdtemp(prefix="snn-msa-pg-"))
    server = work / "server"
    server.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        os.chown(work, entry.pw_uid, entry.pw_gid)
        os.chown(server, entry.pw_uid, entry.pw_gid)
    port = free_port()
    data_dir = server / "data"
    subprocess.run(as_server_user([server_bin("initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust"], user),
                   check=True, stdout=subprocess.DEVNULL)
    options = f"-p {port} -k {server} -c listen_addresses=127.0.0.1"
    subprocess.run(as_server_user([server_bin("pg_ctl"), "-D", str(data_dir), "-o", options, "-l",
                                   str(server / "log"), "-w", "start"], user), check=True, stdout=subprocess.DEVNULL)
    try:
        subprocess.run(as_server_user([server_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                       "snn"], user), check=True)
        storage = f"postgresql+psycopg://postgres@127.0.0.1:{port}/snn"
        data = str(write_pickle(make_synthetic("sims", (16, 8, 8), seed=0, seq_lens=(8, 12, 10)), work / "sims.pkl"))
        version = subprocess.run(as_server_user([server_bin("postgres"), "--version"], user), capture_output=True,
                                 text=True).stdout.strip()
        print(f"server: {version}, port {port}; storage {storage}")
        wanted = sorted((s1, st, 1111) for s1 in (0.5, 2.0) for st in (0.0, 0.01))

        # 1. Two workers at once.
        start = time.perf_counter()
        pair = [worker(work / "two", data, storage, "two-workers") for _ in range(2)]
        logs = [p.communicate(timeout=900)[0] for p in pair]
        codes = [p.returncode for p in pair]
        trained = [line.split("] ", 1)[1] for log in logs for line in log.splitlines()
                   if line.startswith("[trial ") and line.endswith(": training")]
        for code, log in zip(codes, logs):
            if code != 0:
                print(f"a worker exited with {code}:\n{log}")
        keys = complete_keys(trials_of(storage, "two-workers"))
        print(f"two workers: exit codes {codes}, {time.perf_counter() - start:.1f} s; trainings started "
              f"{len(trained)} for {len(set(trained))} distinct trials; complete trials {keys == wanted and 'one per cell' or keys}")

        # 2. A worker killed mid-trial, another after it.
        from optuna.trial import TrialState

        start = time.perf_counter()
        victim = worker(work / "killed", data, storage, "killed", "--heartbeat", "1")
        running = []
        while not running and victim.poll() is None:
            time.sleep(0.05)
            try:
                running = [t for t in trials_of(storage, "killed") if t.state == TrialState.RUNNING and t.params]
            except KeyError:
                pass
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        number = running[0].number if running else None
        rescuer = worker(work / "killed", data, storage, "killed", "--heartbeat", "1")
        log = rescuer.communicate(timeout=900)[0]
        trials = trials_of(storage, "killed")
        state = {t.number: t.state.name for t in trials}.get(number)
        print(f"killed worker: trial {number} was RUNNING at the SIGKILL, now {state}; rescuer exit code "
              f"{rescuer.returncode}, {time.perf_counter() - start:.1f} s; complete trials "
              f"{complete_keys(trials) == wanted and 'one per cell' or complete_keys(trials)}")
        clean = subprocess.run([sys.executable, "-c", "from snn_msa.cli import main; main()", "grid", *GRID,
                                "--data", data, "--out", str(work / "clean")], capture_output=True, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
        same = (work / "killed" / "grid.csv").read_text() == (work / "clean" / "grid.csv").read_text()
        print(f"grid.csv after the kill equals an uninterrupted run's on a journal file: {same} "
              f"(uninterrupted exit code {clean.returncode})")
        if not (codes == [0, 0] and len(trained) == 4 == len(set(trained)) and rescuer.returncode == 0 and same
                and state == "FAIL"):
            print(log)
            sys.exit(1)
    finally:
        subprocess.run(as_server_user([server_bin("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], user),
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
