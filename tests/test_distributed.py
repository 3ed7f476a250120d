"""Data-parallel training under torchrun (snn_msa.training.distributed).

The fast tests check the pieces in one process: the sharding of each global
batch, the loss weights against a plainly summed per-sample gradient, the merge
of evaluations. The slow ones start ``torchrun --nproc-per-node 2`` on the CPU
(gloo) and compare it with a one-process run of the same seed and global batch.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snn_msa.data import load_dataset
from snn_msa.data.hdf5_store import write_store
from snn_msa.data.synthetic import make_synthetic
from snn_msa.registry import create_model
from snn_msa.training import distributed as distributed_mod
from snn_msa.training import CheckpointError, TrainingError, TrainSettings, evaluate_checkpoint, train
from snn_msa.training.distributed import (
    SINGLE,
    ShardedBatches,
    World,
    check_world_size,
    evaluate_split,
    merge_evaluations,
    shard,
    world_from_env,
)
from snn_msa.training.loop import evaluate, to_device, train_epoch

# With --batch-size 5 each split of 11 samples makes global batches of 5, 5 and 1;
# two ranks train on 3 + 2, 3 + 2, and 1 + a weight-0 stand-in, and score batches 0 and 2, and 1.
SIZES, SEQ_LENS, BATCH = (11, 11, 11), (8, 12, 10), 5
TINY = {"d_model": 16, "heads": 2, "dropout": 0.0}
# Adam moves a weight whose gradient is near its eps (1e-8) by up to lr per step
# on float32 rounding alone (docs/scale.md); 1e-4 keeps that below the 1e-5 asked.
LR = 1e-4
SNN_MSA = Path(sys.executable).parent / "snn-msa"


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    write_store(make_synthetic("sims", SIZES, seed=3, seq_lens=SEQ_LENS), path)
    return path


@pytest.fixture(scope="module")
def tiny(tiny_file):
    return load_dataset(tiny_file)


# --- the pieces, in one process ----------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_the_ranks_shares_of_a_global_batch_are_that_batch_in_order(size):
    for n in range(1, 9):
        index = np.random.default_rng(n).permutation(20)[:n]
        parts = [shard(index, rank, size) for rank in range(size)]
        assert np.concatenate(parts).tolist() == index.tolist()
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_sharded_batches_are_each_global_batch_split_and_weighted(tiny):
    loader = tiny.splits["train"].loader(BATCH, shuffle=True, seed=7, epoch=2)
    ranks = [list(ShardedBatches(loader, World(rank=r, size=2))) for r in range(2)]
    assert [len(r) for r in ranks] == [len(loader)] * 2
    for whole, *shares in zip(loader, *ranks):
        real = [s for s in shares if s["samples"]]
        assert [i for s in real for i in s["ids"]] == whole["ids"]
        assert [s["global_samples"] for s in shares] == [len(whole["ids"])] * 2
        assert [s["loss_scale"] for s in shares] == [2 * s["samples"] / len(whole["ids"]) for s in shares]
    stand_in = ranks[1][-1]  # the last global batch holds one sample: rank 1 has none of it
    assert stand_in["samples"] == 0 and stand_in["loss_scale"] == 0 and len(stand_in["ids"]) == 1


def test_each_rank_reads_only_its_rows_of_an_hdf5_store(tiny_file):
    split = load_dataset(tiny_file).splits["train"]
    assert split.storage == "hdf5"
    loader = split.loader(BATCH, shuffle=True, seed=7, epoch=1)
    for rank, expected in ((0, 3 + 3 + 1), (1, 2 + 2 + 1)):  # rank 1's 1 is the stand-in of the last batch
        before = split._features.rows_read
        list(ShardedBatches(loader, World(rank=rank, size=2)))
        assert split._features.rows_read - before == expected


def _gradients(model, batches, all_sum=None) -> dict[str, torch.Tensor]:
    """The gradient train_epoch leaves after its last batch (SGD with lr 0 keeps the weights)."""
    train_epoch(model, batches, torch.optim.SGD(model.parameters(), lr=0.0), torch.device("cpu"), all_sum=all_sum)
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["sgmt-tav", "sgmt-tav-ann"])
def test_weighted_shard_gradients_average_to_the_mean_per_sample_gradient(tiny, name):
    model = create_model(name, feature_dims=tiny.feature_dims, **TINY)
    split = tiny.splits["train"]
    loader = split.loader(BATCH, shuffle=True, seed=1, epoch=1)
    index = loader.order()[:BATCH]

    # The reference, written plainly: the gradient of each sample's loss alone, averaged.
    reference = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in index:
        model.zero_grad()
        inputs, labels = to_device(split.batch([i]), torch.device("cpu"))
        model.loss(model(**inputs), labels)[0].backward()
        for n, p in model.named_parameters():
            reference[n] += p.grad / len(index)

    # Two ranks' shares (3 + 2 samples) of the first global batch, averaged as DDP averages them.
    # (The identity stands in for the sum over ranks of the reported loss, which is not checked here.)
    per_rank = [
        _gradients(copy.deepcopy(model), itertools.islice(ShardedBatches(loader, World(rank=r, size=2)), 1),
                   all_sum=lambda t: t)
        for r in range(2)
    ]
    # float32 sums in another order: equal up to 1e-5 of the largest gradient entry of the model (a
    # parameter whose gradient is a million times smaller than that, as a barely-used attention weight's
    # can be, only carries rounding noise); a wrong loss weight moves the large entries by 20 %.
    scale = max(float(ref.abs().max()) for ref in reference.values())
    for n, ref in reference.items():
        averaged = (per_rank[0][n] + per_rank[1][n]) / 2
        assert float((averaged - ref).abs().max()) <= 1e-5 * scale, n


def test_evaluations_of_consecutive_batches_merge_into_one_evaluation(tiny):
    model = create_model("sgmt-tav", feature_dims=tiny.feature_dims, **TINY)
    split, device = tiny.splits["train"], torch.device("cpu")
    whole = evaluate(model, split.loader(BATCH), device)
    merged = merge_evaluations([evaluate(model, [batch], device) for batch in split.loader(BATCH)])  # 5, 5 and 1
    np.testing.assert_array_equal(merged.predictions, whole.predictions)
    np.testing.assert_array_equal(merged.labels, whole.labels)
    assert merged.ids == whole.ids
    assert merged.loss == pytest.approx(whole.loss, rel=1e-12)
    assert merged.total_loss == pytest.approx(whole.total_loss, rel=1e-12)
    assert merged.activity == whole.activity and merged.activity  # spikes and neuron-steps, per layer
    assert merged.firing_rates == whole.firing_rates and merged.mean_firing_rate == whole.mean_firing_rate
    np.testing.assert_array_equal(merged.sample_firing_rates, whole.sample_firing_rates)


def test_dealt_out_evaluation_batches_come_back_once_each_in_split_order(tiny, monkeypatch):
    model = create_model("sgmt-tav", feature_dims=tiny.feature_dims, **TINY)
    split, device = tiny.splits["valid"], torch.device("cpu")
    parts = {}

    class Recorded(Exception):
        pass

    def gather(world, value):  # all_gather_object of two ranks, played one rank after the other
        parts[world.rank] = value
        if world.rank == 1:
            raise Recorded
        return [parts[rank] for rank in range(world.size)]

    monkeypatch.setattr(distributed_mod, "gather", gather)
    with pytest.raises(Recorded):
        evaluate_split(model, split, BATCH, device, World(rank=1, size=2))  # rank 1 scores batch 1 of 0, 1, 2
    merged = evaluate_split(model, split, BATCH, device, World(rank=0, size=2))
    assert [len(parts[rank]) for rank in range(2)] == [2, 1]
    whole = evaluate(model, split.loader(BATCH), device)
    assert merged.ids == whole.ids == split.ids
    np.testing.assert_array_equal(merged.predictions, whole.predictions)  # each batch scored as one process does
    np.testing.assert_array_equal(merged.sample_firing_rates, whole.sample_firing_rates)
    assert merged.loss == pytest.approx(whole.loss, rel=1e-12) and merged.activity == whole.activity


def test_too_many_processes_are_refused_with_what_to_do():
    with pytest.raises(TrainingError, match="12 processes for a training split of 11 samples.*at most 11"):
        check_world_size(World(rank=0, size=12), train_samples=11, batch_size=32)
    with pytest.raises(TrainingError, match="--batch-size 4 is the global batch.*--batch-size 6"):
        check_world_size(World(rank=0, size=6), train_samples=11, batch_size=4)
    check_world_size(World(rank=0, size=4), train_samples=11, batch_size=4)


def test_torchruns_variables_name_the_world():
    assert world_from_env({}) is SINGLE
    assert world_from_env({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) is SINGLE
    assert world_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(rank=3, size=4, local_rank=1)
    with pytest.raises(TrainingError, match="must be integers"):
        world_from_env({"WORLD_SIZE": "two"})
    with pytest.raises(TrainingError, match="WORLD_SIZE 4, RANK 4,.*torchrun"):
        world_from_env({"WORLD_SIZE": "4", "RANK": "4"})


def test_more_processes_on_a_node_than_gpus_is_refused_on_every_rank(monkeypatch):
    monkeypatch.setattr(distributed_mod, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TrainingError, match="2 processes on a node with 1 GPU.*at most 1 per node"):
        distributed_mod.start("cuda")  # rank 0 has a GPU, yet says it: the only rank that prints


def _collectives(rank: int, port: int, folder: str) -> None:
    """One of two processes of a real gloo group: what each collective gives this rank, as JSON."""
    import json

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    world, _ = distributed_mod.start("cpu")
    seen = {"world": [world.rank, world.size, world.backend]}
    try:
        seen["decision"] = distributed_mod.from_main(world, rank == 0)  # rank 0's says; rank 1's differs
        seen["gathered"] = distributed_mod.gather(world, f"rank {rank}")
        seen["sum"] = float(distributed_mod.all_sum(world)(torch.tensor(rank + 1.0)))
        seen["main_result"] = distributed_mod.on_main(world, lambda: f"computed by rank {rank}")

        def refused() -> None:
            raise CheckpointError(f"refused on rank {rank}")

        try:
            distributed_mod.on_main(world, refused)
        except CheckpointError as error:
            seen["error"] = str(error)
    finally:
        distributed_mod.stop(world)
    Path(folder, f"rank-{rank}.json").write_text(json.dumps(seen))


@pytest.mark.slow
def test_collectives_give_every_rank_rank_0s_decisions_and_errors(tmp_path):
    import json
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_collectives, args=(port, str(tmp_path)), nprocs=2, join=True)
    seen = [json.loads((tmp_path / f"rank-{rank}.json").read_text()) for rank in range(2)]
    assert [s["world"] for s in seen] == [[0, 2, "gloo"], [1, 2, "gloo"]]
    assert [s["decision"] for s in seen] == [True, True]  # early stopping is decided once, on rank 0
    assert [s["gathered"] for s in seen] == [["rank 0", "rank 1"]] * 2
    assert [s["sum"] for s in seen] == [3.0, 3.0]
    assert [s["main_result"] for s in seen] == ["computed by rank 0"] * 2
    assert [s["error"] for s in seen] == ["refused on rank 0"] * 2  # raised on every rank, by its own class


# --- torchrun, 2 processes on the CPU (gloo) ---------------------------------------------------


def _options(data: Path, out: Path, epochs: int) -> list[str]:
    return ["--model", "sgmt-tav", "--data", str(data), "--epochs", str(epochs), "--batch-size", str(BATCH),
            "--lr", str(LR), "--d-model", "16", "--heads", "2", "--dropout", "0",
            "--device", "cpu", "--threads", "1", "--out", str(out)]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    assert SNN_MSA.exists(), f"{SNN_MSA} is missing: install the package (pip install -e .)"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(SNN_MSA),
               "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def _one_process(data: Path, out: Path, epochs: int) -> dict:
    return train(TrainSettings(model="sgmt-tav", data=str(data), epochs=epochs, batch_size=BATCH, lr=LR, threads=1,
                               model_overrides=TINY, device="cpu", out=str(out), quiet=True))


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def _largest_difference(a: Path, b: Path) -> float:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def _assert_same_test_metrics(a: dict, b: dict) -> None:
    ma, mb = a["seeds"][0]["test_metrics"], b["seeds"][0]["test_metrics"]
    assert ma.keys() == mb.keys()
    for key in ma:
        assert mb[key] == pytest.approx(ma[key], abs=1e-5), key


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, tiny_file):
    """The same two-epoch training in one process and under torchrun with 2 processes."""
    root = tmp_path_factory.mktemp("ddp")
    one = _one_process(tiny_file, root / "one", epochs=2)
    done = _torchrun(*_options(tiny_file, root / "two", epochs=2), "--tensorboard", str(root / "tb"))
    assert done.returncode == 0, done.stdout + done.stderr
    return root, one, done


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(two_runs):
    import json

    root, one, done = two_runs
    two = json.loads((root / "two" / "results.json").read_text())
    for name in ("last.pt", "best.pt"):
        assert _largest_difference(root / "one/seed-1111" / name, root / "two/seed-1111" / name) < 1e-5, name
    _assert_same_test_metrics(one, two)
    assert one["seeds"][0]["best_epoch"] == two["seeds"][0]["best_epoch"]
    assert (one["world_size"], two["world_size"]) == (1, 2)


@pytest.mark.slow
def test_rank_0_alone_prints_and_writes(two_runs):
    root, _, done = two_runs
    assert done.stdout.count("epoch 1/2") == 1 and done.stdout.count("wrote ") == 1, done.stdout
    files = sorted(str(p.relative_to(root / "two")) for p in (root / "two").rglob("*") if p.name != ".snn-msa.lock")
    assert files == ["results.json", "seed-1111", "seed-1111/best.pt", "seed-1111/last.pt"]
    assert len(list((root / "tb/seed-1111").glob("events.out.tfevents.*"))) == 1  # one TensorBoard writer


@pytest.mark.slow
def test_a_checkpoint_written_under_torchrun_evaluates_in_one_process(two_runs):
    root = two_runs[0]
    result = evaluate_checkpoint(root / "two/seed-1111/best.pt", device="cpu")
    assert result["same_data_as_training"] and result["matches_reported"] is True, result


@pytest.mark.slow
def test_resume_under_torchrun_continues_the_run(two_runs, tiny_file, tmp_path):
    root = two_runs[0]
    shutil.copytree(root / "two", tmp_path / "two")
    done = _torchrun(*_options(tiny_file, tmp_path / "two", epochs=3), "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from" in done.stdout and done.stdout.count("epoch 3/3") == 1
    one = _one_process(tiny_file, tmp_path / "one", epochs=3)
    assert _largest_difference(tmp_path / "one/seed-1111/last.pt", tmp_path / "two/seed-1111/last.pt") < 1e-5
    import json

    _assert_same_test_metrics(one, json.loads((tmp_path / "two/results.json").read_text()))


@pytest.mark.slow
def test_more_processes_than_training_samples_is_one_clear_error(tmp_path):
    data = tmp_path / "one-sample.h5"
    write_store(make_synthetic("sims", (1, 2, 2), seed=3, seq_lens=SEQ_LENS), data)
    done = _torchrun(*_options(data, tmp_path / "run", epochs=1))
    assert done.returncode != 0
    line = "Error: 2 processes for a training split of 1 samples"
    assert done.stderr.count(line) == 1, done.stderr
    assert not (tmp_path / "run").exists()
