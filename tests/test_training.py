"""The trainer: recipe resolution, early stopping, checkpoints, resume, determinism, NaN handling."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from snn_msa import atomic
from snn_msa.data import load_dataset
from snn_msa.data.synthetic import make_synthetic, write_pickle
from snn_msa.model import SGMT
from snn_msa.output_lock import LOCK_NAME
from snn_msa.registry import get_card, list_models
from snn_msa.training import (
    CheckpointError,
    NonFiniteLossError,
    TrainingError,
    TrainSettings,
    evaluate_checkpoint,
    train,
)
from snn_msa.training import checkpoint as ckpt_mod
from snn_msa.training import distributed as distributed_mod
from snn_msa.training import trainer as trainer_mod
from snn_msa.training.results import aggregate, json_safe, mean_std

TINY = {"d_model": 16, "heads": 2, "head_hidden": 16}


@pytest.fixture(scope="module")
def tiny():
    """SIMS-shaped built-in synthetic data, 24/8/8 samples."""
    return load_dataset(None, "sims", synthetic_sizes=(24, 8, 8))


def settings(tmp_path, name="run", **changes) -> TrainSettings:
    base = dict(model="sgmt-tav", epochs=2, out=str(tmp_path / name), quiet=True, batch_size=16, model_overrides=TINY,
                threads=1)
    return TrainSettings(**{**base, **changes})


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_times(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# --- settings --------------------------------------------------------------------------------


def test_recipe_defaults_come_from_the_card_and_overrides_win():
    card = get_card("sgmt-tav").recipe
    recipe = TrainSettings(model="sgmt-tav").recipe()
    assert recipe == card and recipe.patience == 8
    # an entry tuned per data set (MMSA's baselines) takes the run's data set's recipe
    assert TrainSettings(model="lf-dnn", dataset="mosei").recipe() == get_card("lf-dnn").recipe_for("mosei")
    assert TrainSettings(model="lf-dnn").recipe("mosei").batch_size == 64 != TrainSettings(model="lf-dnn").recipe().batch_size
    changed = TrainSettings(model="sgmt-tav", epochs=3, lr=5e-4, batch_size=8, patience=2, grad_clip=0).recipe()
    assert (changed.max_epochs, changed.lr, changed.batch_size, changed.patience, changed.grad_clip) == (3, 5e-4, 8, 2, 0.0)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"seeds": ()}, "seeds"),
        ({"seeds": (1, 1)}, "must not repeat"),
        ({"device": "gpu"}, "device must be one of"),
        ({"threads": 0}, "threads must be a positive integer"),
        ({"resume": True, "overwrite": True}, "exclude each other"),
    ],
)
def test_bad_settings_say_what_is_wrong(change, words):
    with pytest.raises(TrainingError, match=words):
        TrainSettings(model="sgmt-tav", **change)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(TrainingError) as error:
        TrainSettings(model="sgmt-xyz").recipe()
    assert "sgmt-tav" in str(error.value) and "Known models" in str(error.value)


def test_aggregate_is_mean_and_population_std():
    summary = aggregate([{"MAE": 1.0, "Corr": 0.5}, {"MAE": 3.0, "Corr": float("nan")}])
    assert summary["mean"]["MAE"] == 2.0 and summary["std"]["MAE"] == 1.0  # numpy.std, ddof=0, as MMSA
    assert summary["mean"]["Corr"] is None and summary["n"] == 2
    assert mean_std([0.25]) == (0.25, 0.0)
    assert json_safe({"a": (1.0, float("inf"))}) == {"a": [1.0, None]}


# --- a training run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, tiny):
    """An uninterrupted 4-epoch run (seed 1111) that several tests compare against."""
    root = tmp_path_factory.mktemp("full")
    return root, train(settings(root, epochs=4), dataset=tiny)


def test_train_writes_results_and_checkpoints(tmp_path, tiny):
    threads = torch.get_num_threads()
    results = train(settings(tmp_path, seeds=(7, 8)), dataset=tiny)
    assert torch.get_num_threads() == threads and results["threads"] == 1  # one thread during the run, then restored
    out = tmp_path / "run"
    assert json.loads((out / "results.json").read_text()) == results
    assert [r["seed"] for r in results["seeds"]] == [7, 8]
    assert results["model"] == "sgmt-tav" and results["dataset"] == "sims" and results["data"]["built_in"]
    assert results["recipe"]["max_epochs"] == 2 and results["model_config"]["d_model"] == 16
    assert set(results["test"]["mean"]) == {"Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE", "Corr"}
    assert results["test"]["n"] == 2
    for run in results["seeds"]:
        assert 1 <= run["best_epoch"] <= 2 and run["epochs_run"] == 2 and len(run["history"]) == 2
        assert run["firing_rate"] is not None and 0.0 <= run["firing_rate"] <= 1.0
        assert run["seconds_per_epoch"] > 0
        best = torch.load(out / f"seed-{run['seed']}" / "best.pt", weights_only=True)  # safe format
        assert best["format"] == "snn-msa-checkpoint" and best["kind"] == "best"
        assert best["model"]["name"] == "sgmt-tav" and best["model"]["config"]["d_model"] == 16
        assert best["data"]["profile"] == "sims" and best["recipe"]["batch_size"] == 16
        assert best["test_metrics"] == run["test_metrics"] and best["best_epoch"] == run["best_epoch"]
        last = torch.load(out / f"seed-{run['seed']}" / "last.pt", weights_only=True)
        assert last["epoch"] == 2 and "optimizer" in last and "rng" in last
    assert not list(out.rglob("*.part"))  # no temporary file left behind

    # The same seed again (alone this time) gives the same run: weights, history and metrics.
    again = train(settings(tmp_path, "again", seeds=(7,)), dataset=tiny)
    assert again["seeds"][0]["test_metrics"] == results["seeds"][0]["test_metrics"]
    assert without_times(again["seeds"][0]["history"]) == without_times(results["seeds"][0]["history"])
    assert same_weights(weights(out / "seed-7/best.pt"), weights(tmp_path / "again/seed-7/best.pt"))


# Early stopping, pinned to its documented criterion: the validation MAE of the M head against the
# unclipped labels. The valid pass of each epoch is scripted so that every other plausible criterion
# picks another epoch: the MAE after MMSA's clipping to [-1, 1] (epoch 3), the multi-task loss
# (epoch 4), the squared error (epoch 5). The MAE itself picks epoch 2.
VALID_M = np.array([0.95, -0.95, 0.2, -0.2, 0.0, 0.5, -0.5, 0.1], dtype=np.float32)
SCRIPTED_M = [
    VALID_M + 0.5,                                                   # MAE 0.5
    VALID_M + np.array([0, 0, 0, 0, 0.4, 0.4, 0.4, 0.4]),            # MAE 0.2 (the best), squared 0.08
    np.where(np.abs(VALID_M) > 0.9, 5 * np.sign(VALID_M), VALID_M),  # MAE 1.01, clipped to [-1, 1] 0.0125
    VALID_M + 0.3,                                                   # MAE 0.3, the other heads exact
    VALID_M - 0.22,                                                  # MAE 0.22, squared 0.0484
    VALID_M + 0.6,                                                   # worse by every measure
]
OTHER_HEADS_OFF_BY = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]  # added to every other head's exact prediction


def _criteria(epoch: int, loss_weights: dict[str, float]) -> dict[str, float]:
    """Every candidate criterion of one scripted epoch, written out with numpy."""
    pred = SCRIPTED_M[epoch].astype(np.float32)
    mae = float(np.mean(np.abs(pred - VALID_M)))
    others = sum(w * OTHER_HEADS_OFF_BY[epoch] for head, w in loss_weights.items() if head != "M")
    return {"mae": mae, "clipped_mae": float(np.mean(np.abs(np.clip(pred, -1, 1) - np.clip(VALID_M, -1, 1)))),
            "total": loss_weights["M"] * mae + others, "squared": float(np.mean((pred - VALID_M) ** 2))}


def test_early_stopping_follows_the_validation_mae_of_m_against_unclipped_labels(tmp_path, monkeypatch):
    short = make_synthetic("sims", (24, 8, 8), seed=1, seq_lens=(8, 10, 6))  # short sequences: fast epochs
    data = load_dataset(write_pickle(short, tmp_path / "short.pkl"))
    valid = data.splits["valid"]
    valid._labels["M"] = VALID_M.copy()  # labels chosen so that clipping matters at epoch 3
    head_labels = {"T": valid.labels("T"), "A": valid.labels("A"), "V": valid.labels("V"), "TAV": VALID_M}
    real_forward, real_evaluate, valid_passes, evaluating = SGMT.forward, distributed_mod.evaluate, [], []

    def noting_the_split(model, batches, device):
        evaluating[:] = [batches.split.name]
        return real_evaluate(model, batches, device)

    def scripted_forward(self, *args, **kwargs):
        output = real_forward(self, *args, **kwargs)
        if self.training or evaluating != ["valid"]:
            return output
        epoch = len(valid_passes)
        valid_passes.append(dict(self.loss_weights))
        assert output.predictions["M"].shape == (8,)  # the whole valid split in one batch, in order
        scripted = {h: torch.from_numpy(y + np.float32(OTHER_HEADS_OFF_BY[epoch])) for h, y in head_labels.items()}
        scripted["M"] = torch.from_numpy(SCRIPTED_M[epoch].astype(np.float32))
        output.predictions = scripted
        return output

    monkeypatch.setattr(SGMT, "forward", scripted_forward)
    monkeypatch.setattr(distributed_mod, "evaluate", noting_the_split)
    results = train(settings(tmp_path, epochs=6, patience=3), dataset=data)
    run = results["seeds"][0]
    table = [_criteria(e, valid_passes[0]) for e in range(5)]
    picks = {name: int(np.argmin([row[name] for row in table])) + 1 for name in table[0]}
    assert picks == {"mae": 2, "clipped_mae": 3, "total": 4, "squared": 5}  # the script does tell them apart

    assert run["best_epoch"] == 2
    assert [h["valid_loss"] for h in run["history"]] == pytest.approx([row["mae"] for row in table], abs=1e-6)
    assert run["best_valid_loss"] == pytest.approx(table[1]["mae"], abs=1e-6)
    assert run["valid_metrics"]["MAE"] == pytest.approx(table[1]["clipped_mae"], abs=1e-6)  # epoch 2's metrics
    # Patience 3 after the best epoch 2: epochs 3, 4 and 5 do not improve, so epoch 6 never runs.
    assert run["epochs_run"] == 5 and run["stopped_early"] and len(valid_passes) == 5
    assert [h["best"] for h in run["history"]] == [True, True, False, False, False]


def _interrupt_after_epoch(monkeypatch, stop: int) -> None:
    """Ctrl-C right after epoch ``stop`` (its last.pt is already written: a clean interruption point)."""
    real_epoch = trainer_mod.Progress.epoch

    def interrupting(self, epoch, *args, **kwargs):
        real_epoch(self, epoch, *args, **kwargs)
        if epoch == stop:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer_mod.Progress, "epoch", interrupting)


def _record_epochs(monkeypatch) -> list[dict]:
    """Wrap the per-epoch training function: one entry per epoch that actually trains, holding the
    weights it started from and Adam's step counts at that moment."""
    real_train_epoch, started = trainer_mod.train_epoch, []

    def recorded(model, batches, optimizer, *args, **kwargs):
        started.append({"weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
                        "adam_steps": sorted({int(s["step"]) for s in optimizer.state.values()})})
        return real_train_epoch(model, batches, optimizer, *args, **kwargs)

    monkeypatch.setattr(trainer_mod, "train_epoch", recorded)
    return started


def test_resume_runs_only_the_remaining_epochs_from_the_checkpoint(tmp_path, tiny, full_run, monkeypatch):
    full_dir, full = full_run
    with monkeypatch.context() as interrupted:
        _interrupt_after_epoch(interrupted, 2)
        first = _record_epochs(interrupted)
        with pytest.raises(KeyboardInterrupt):
            train(settings(tmp_path, epochs=4), dataset=tiny)
    assert len(first) == 2 and not (tmp_path / "run/results.json").exists()
    last = ckpt_mod.load_checkpoint(tmp_path / "run/seed-1111/last.pt")
    assert last["epoch"] == 2
    shutil.copytree(tmp_path / "run", tmp_path / "perturbed")

    started = _record_epochs(monkeypatch)
    resumed = train(settings(tmp_path, epochs=4, resume=True), dataset=tiny)
    epochs_trained = len(started)
    assert epochs_trained == 2  # epochs 3 and 4 only: 1 and 2 are not trained again
    starts_from_checkpoint = same_weights(started[0]["weights"], last["state_dict"])
    assert starts_from_checkpoint  # epoch 3 starts from the checkpoint's weights
    assert started[0]["adam_steps"] == [4]  # and from its Adam state (2 epochs of 2 batches)
    a, b = full["seeds"][0], resumed["seeds"][0]
    assert a["test_metrics"] == b["test_metrics"] and a["best_epoch"] == b["best_epoch"]
    assert without_times(a["history"]) == without_times(b["history"])
    for name in ("best.pt", "last.pt"):
        assert same_weights(weights(full_dir / "run/seed-1111" / name), weights(tmp_path / "run/seed-1111" / name))

    # Weights perturbed on purpose in last.pt: the resumed run must start from them, and so end
    # elsewhere than the uninterrupted run (a run that retrained or rebuilt them would not). One
    # epoch is enough: its result is compared with the weights the uninterrupted run had after epoch 3.
    after_epoch_3 = started[1]["weights"]
    perturbed_path = tmp_path / "perturbed/seed-1111/last.pt"
    perturbed = {k: v + 0.05 if v.is_floating_point() else v for k, v in last["state_dict"].items()}
    payload = {k: v for k, v in last.items() if k not in ("format", "version", "kind")}
    ckpt_mod.save_checkpoint({**payload, "state_dict": perturbed}, perturbed_path, "last")
    started.clear()
    train(settings(tmp_path, "perturbed", epochs=3, resume=True), dataset=tiny)
    epochs_trained, starts_from_checkpoint = len(started), same_weights(started[0]["weights"], perturbed)
    assert epochs_trained == 1 and starts_from_checkpoint
    ends_as_uninterrupted = same_weights(weights(perturbed_path), after_epoch_3)
    assert not ends_as_uninterrupted


def test_resume_refuses_other_settings_and_empty_folders(tmp_path, tiny, full_run):
    full_dir = full_run[0]
    with pytest.raises(CheckpointError, match="other settings.*lr"):
        train(settings(full_dir, epochs=4, lr=0.01, resume=True), dataset=tiny)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(settings(tmp_path, "empty", resume=True), dataset=tiny)


def test_resume_refuses_a_checkpoint_of_a_model_built_with_another_default(tmp_path, tiny, full_run):
    """A last.pt written when V_th defaulted to 1 must not continue as a 0.75 model: the options are the same."""
    shutil.copytree(full_run[0] / "run", tmp_path / "run")
    path = tmp_path / "run/seed-1111/last.pt"
    last = ckpt_mod.load_checkpoint(path)
    payload = {k: v for k, v in last.items() if k not in ("format", "version", "kind")}
    payload["model"]["config"]["neuron"]["v_threshold"] = 1.0
    ckpt_mod.save_checkpoint(payload, path, "last")
    with pytest.raises(CheckpointError, match=r"neuron.v_threshold: 1.0 then, 0.75 now.*--v-threshold 1"):
        train(settings(tmp_path, epochs=4, resume=True), dataset=tiny)
    old_default = settings(tmp_path, epochs=4, resume=True, model_overrides={**TINY, "v_threshold": 1.0})
    assert train(old_default, dataset=tiny)["model_config"]["neuron"]["v_threshold"] == 1.0  # as the message says


def test_a_finished_run_is_not_overwritten_by_accident(tmp_path, tiny, full_run):
    with pytest.raises(TrainingError, match="already holds a run.*--resume.*--overwrite"):
        train(settings(full_run[0], epochs=4), dataset=tiny)
    train(settings(tmp_path, epochs=1), dataset=tiny)
    again = train(settings(tmp_path, epochs=1, seeds=(5,), overwrite=True), dataset=tiny)
    kept = sorted(p.name for p in (tmp_path / "run").iterdir() if p.name != LOCK_NAME)  # the lock file stays
    assert again["seeds"][0]["seed"] == 5 and kept == ["results.json", "seed-5"]


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, tiny, monkeypatch):
    real_loss = SGMT.loss
    steps = []

    def loss_turns_nan(self, output, labels):
        total, parts = real_loss(self, output, labels)
        if self.training:
            steps.append(1)
            if len(steps) >= 3:  # batch 1 of epoch 2 (16 + 8 samples: two batches per epoch)
                total = total * float("nan")
        return total, parts

    monkeypatch.setattr(SGMT, "loss", loss_turns_nan)
    with pytest.raises(NonFiniteLossError) as error:
        train(settings(tmp_path, epochs=3), dataset=tiny)
    message = str(error.value)
    assert "epoch 2" in message and "nan" in message and "--lr" in message and "last.pt" in message
    last = torch.load(tmp_path / "run/seed-1111/last.pt", weights_only=True)
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())
    assert (tmp_path / "run/seed-1111/best.pt").exists()


def test_an_infinite_loss_in_the_first_epoch_says_no_checkpoint_was_written(tmp_path, tiny, monkeypatch):
    real_loss = SGMT.loss
    monkeypatch.setattr(SGMT, "loss", lambda self, o, y: (real_loss(self, o, y)[0] * float("inf"), {}))
    with pytest.raises(NonFiniteLossError, match="No epoch had completed"):
        train(settings(tmp_path), dataset=tiny)


def test_dataset_must_agree_with_the_settings(tmp_path, tiny):
    with pytest.raises(TrainingError, match="'sims'.*'mosi'"):
        train(settings(tmp_path, dataset="mosi"), dataset=tiny)


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_entry_trains(tmp_path, tiny, name):
    # SGMT's tiny widths; the baselines at their defaults but TFN's 35 M-parameter fusion made small
    overrides = TINY if name.startswith("sgmt") else {"tfn": {"hidden_dims": (8, 4, 8), "text_out": 8}}.get(name, {})
    results = train(settings(tmp_path, model=name, epochs=1, model_overrides=overrides), dataset=tiny)
    run = results["seeds"][0]
    assert run["best_epoch"] == 1 and all(math.isfinite(v) for v in [run["best_valid_loss"], run["test_loss"]])
    assert (run["firing_rate"] is None) == (not get_card(name).spiking)


# --- checkpoints -----------------------------------------------------------------------------


def test_evaluate_checkpoint_reproduces_the_reported_metrics(tiny, full_run):
    run = full_run[1]["seeds"][0]
    path = full_run[0] / "run/seed-1111/best.pt"
    rebuilt = evaluate_checkpoint(path)  # built-in synthetic data rebuilt from the checkpoint alone
    assert rebuilt["metrics"] == run["test_metrics"] and rebuilt["matches_reported"] is True
    assert rebuilt["firing_rate"] == run["firing_rate"] and rebuilt["best_epoch"] == run["best_epoch"]
    valid = evaluate_checkpoint(path, split="valid", dataset=tiny)
    assert valid["metrics"] == run["valid_metrics"] and valid["matches_reported"] is True
    other = evaluate_checkpoint(path, dataset=load_dataset(None, "sims", synthetic_sizes=(4, 4, 4), seed=9))
    assert other["same_data_as_training"] is False and other["matches_reported"] is None


def test_evaluate_checkpoint_notices_synthetic_data_it_cannot_rebuild(tmp_path, full_run):
    ckpt = ckpt_mod.load_checkpoint(full_run[0] / "run/seed-1111/best.pt")
    ckpt["data"]["fingerprints"]["test"] = "0" * 16  # as if the generator had changed since the run
    changed = tmp_path / "best.pt"
    ckpt_mod.save_checkpoint({k: v for k, v in ckpt.items() if k not in ("format", "version", "kind")}, changed, "best")
    with pytest.raises(CheckpointError, match="cannot be rebuilt here.*--data"):
        evaluate_checkpoint(changed)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    ckpt_mod.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, path, "best")
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)  # the bytes are in the temporary file; it cannot be made durable
    with pytest.raises(atomic.WriteError, match="best.pt: could not write it: no space left.*previous file is unchanged"):
        ckpt_mod.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, path, "best")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["best.pt"]


class _NotAllowed:
    pass


def test_foreign_or_unsafe_checkpoints_are_refused(tmp_path):
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": "snn-msa-checkpoint", "x": _NotAllowed()}, unsafe)
    with pytest.raises(CheckpointError, match="refused to load"):
        ckpt_mod.load_checkpoint(unsafe)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not an snn-msa checkpoint"):
        ckpt_mod.load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        ckpt_mod.load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt_mod.load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trips():
    import random

    state = ckpt_mod.rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt_mod.set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def test_a_run_takes_the_recipe_of_its_data_sets_profile(tmp_path):
    """MMSA tunes TFN per data set: on MOSI-shaped data the run uses MOSI's lr (1e-3), not CH-SIMS's (5e-4)."""
    mosi = load_dataset(None, "mosi", synthetic_sizes=(8, 4, 4))
    small = {"hidden_dims": (8, 4, 8), "text_out": 8}
    results = train(settings(tmp_path, model="tfn", epochs=1, batch_size=None, model_overrides=small), dataset=mosi)
    assert results["recipe"] == get_card("tfn").recipe_for("mosi").with_changes(max_epochs=1).as_dict()
    assert results["recipe"]["lr"] == 1e-3
