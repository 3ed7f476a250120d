"""The one trainer of every zoo entry: Adam, early stopping on the validation loss, one test.

Per seed (MMSA's procedure):

1. Seed Python, numpy and torch, then build the model (so its initial weights
   and the connected neuron's fixed omega follow from the seed).
2. Each epoch: one pass of Adam over the shuffled training split (the order
   follows from the seed and the epoch), then one pass over the validation split.
3. The validation loss is the mean absolute error of the multimodal head ``M``
   (MMSA's ``KeyEval = "Loss"`` for regression). An epoch improves on the best
   when its loss is lower by more than 1e-6 (MMSA's margin); after ``patience``
   epochs without improvement, or ``max_epochs`` in all, training stops.
4. The best epoch's weights are restored and the test split is evaluated once.
   Nothing is chosen on the test split.

Each completed epoch rewrites ``seed-<s>/last.pt`` (the state to resume from);
each improvement rewrites ``seed-<s>/best.pt``; the end writes ``results.json``.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..data import MSADataset
from ..data.nonfinite import summary as nonfinite_summary
from ..metrics import METRIC_KEYS, metric_family, msa_metrics
from ..output_lock import OutputHold, describe_holder, hold_output
from ..registry import UnknownModelError, create_model
from . import distributed
from .checkpoint import (
    cpu_state_dict,
    load_checkpoint,
    load_weights,
    model_spec,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .data_source import data_spec, load_training_data
from .errors import CheckpointError, NonFiniteLossError, TrainingError
from .loop import train_epoch
from .progress import Progress
from .results import (
    RESULTS_FORMAT,
    RESULTS_VERSION,
    aggregate,
    format_mean_std,
    format_metrics,
    json_safe,
    versions,
    write_json,
)
from .settings import Recipe, TrainSettings, use_threads
from .tensorboard_log import EpochLog

IMPROVEMENT_MARGIN = 1e-6
# The validation metrics an epoch line shows, per metric family.
EPOCH_KEYS = {"sims": ["Mult_acc_2", "Mult_acc_5", "MAE", "Corr"], "mosi": ["Non0_acc_2", "Mult_acc_7", "MAE", "Corr"]}
# Settings that must not change when a run is resumed (max_epochs may grow, device may change).
RESUME_KEYS = ("model", "dataset", "data", "model_overrides", "lr", "batch_size", "patience", "weight_decay", "grad_clip", "seed")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CUDA's too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    settings: TrainSettings,
    dataset: MSADataset | None = None,
    *,
    echo: Callable[[str], None] | None = None,
    bars: bool | None = None,
) -> dict[str, Any]:
    """Train ``settings.model`` once per seed and test each seed's best weights once.

    Args:
        settings: what to run; see :class:`TrainSettings`.
        dataset: an already loaded :class:`~snn_msa.data.MSADataset` (skips
            loading ``settings.data``); its profile must agree with ``settings.dataset``.
        echo: where progress lines go (default: stdout); nothing is printed when
            ``settings.quiet``.
        bars: the per-epoch progress bar on stderr: ``None`` shows it on a
            terminal only, ``False`` never (always off when quiet).

    Returns:
        The content of ``<out>/results.json`` (strict JSON: NaN is ``None``).

    The run holds its output folder for as long as it writes there
    (:func:`~snn_msa.output_lock.hold_output`): a second run aimed at the same
    folder stops at once.

    Raises:
        TrainingError: bad settings, an unknown model, an occupied run folder, a
            checkpoint that does not fit a resumed run.
        snn_msa.output_lock.OutputBusyError: another process is running in the folder.
        snn_msa.atomic.WriteError: a checkpoint or results.json could not be written
            (full disk, I/O error); the files written before are kept.
        NonFiniteLossError: the loss became NaN or infinite (the last good
            checkpoint is kept).
        snn_msa.data.DataError: the data file cannot be used.
    """
    recipe = settings.recipe()  # also checks the model name (the data set's own recipe is taken once it is loaded)
    world, device = distributed.start(settings.device)
    try:
        return _train(settings, recipe, world, device, dataset, echo, bars)
    finally:
        distributed.stop(world)


def _train(settings: TrainSettings, recipe: Recipe, world: distributed.World, device: torch.device,
           dataset: MSADataset | None, echo: Callable[[str], None] | None, bars: bool | None) -> dict[str, Any]:
    _build_model(settings, None)  # bad model overrides fail before the data is loaded
    with contextlib.ExitStack() as held:
        # An existing folder is held before the data is read, so a second run aimed there stops at once. A new
        # folder is created (and held) only once the data has loaded, so bad data leaves no folder behind; the
        # default folder's name needs the data's profile. A second hold of the same folder passes through.
        named = settings.out_dir("") if settings.out is not None else None
        early = _hold(world, held, named) if named is not None and named.is_dir() else None
        dataset = load_training_data(settings, dataset)
        recipe = settings.recipe(dataset.profile.name)  # an entry may carry its own recipe per data set
        distributed.check_world_size(world, len(dataset.splits["train"]), recipe.batch_size)
        out = Path(distributed.from_main(world, str(settings.out_dir(dataset.profile.name))))  # named by rank 0's clock
        late = _hold(world, held, out)
        taken_over = (early or late).taken_over
        # checkpoints and results record the folder actually used
        return _train_in(settings.with_changes(out=str(out)), recipe, world, device, dataset, taken_over, echo, bars)


def _hold(world: distributed.World, held: contextlib.ExitStack, folder: Path) -> OutputHold:
    """Hold ``folder`` on rank 0 (the one process that writes) until ``held`` closes; every rank gets the outcome."""
    return distributed.on_main(world, lambda: held.enter_context(hold_output(folder)))


def _train_in(settings: TrainSettings, recipe: Recipe, world: distributed.World, device: torch.device,
              dataset: MSADataset, taken_over: dict | None, echo: Callable[[str], None] | None,
              bars: bool | None) -> dict[str, Any]:
    """:func:`train` once its output folder ``settings.out`` is held."""
    profile = dataset.profile.name
    out = Path(settings.out)
    distributed.on_main(world, lambda: _prepare_out(out, settings))
    progress = Progress(quiet=settings.quiet or not world.is_main, echo=echo, bars=bars)
    if taken_over is not None:
        progress.line(f"took over {out} from {describe_holder(taken_over)}, which ended without releasing it")
    family = metric_family(profile)
    spec_data = data_spec(dataset, settings.data)

    runs, model_info = [], {}
    threads_before = use_threads(settings.threads)
    threads = torch.get_num_threads()
    try:
        for index, seed in enumerate(settings.seeds):
            run, model_info = _train_seed(
                settings, recipe, dataset, seed, out / f"seed-{seed}", device, progress, family, spec_data,
                announce=index == 0, position=(index + 1, len(settings.seeds)), world=world,
            )
            runs.append(run)
    except KeyboardInterrupt:
        progress.line(f"interrupted: the completed epochs are saved in {out}/seed-<s>/last.pt; "
                      f"continue with the same options and --resume --out {out}")
        raise
    finally:
        torch.set_num_threads(threads_before)

    keys = METRIC_KEYS[family]
    results = {
        "format": RESULTS_FORMAT,
        "version": RESULTS_VERSION,
        "model": settings.model,
        "dataset": profile,
        "data": spec_data,
        "recipe": recipe.as_dict(),
        "settings": settings.as_dict(),
        "device": str(device),
        "threads": threads,
        "world_size": world.size,
        **model_info,
        "metric_keys": keys,
        "seeds": runs,
        "test": aggregate([r["test_metrics"] for r in runs]),
        "valid": aggregate([r["valid_metrics"] for r in runs]),
        "best_epoch": _mean_std_of([r["best_epoch"] for r in runs]),
        "firing_rate": _mean_std_of([r["firing_rate"] for r in runs]),
        "seconds_per_epoch": _mean_std_of([r["seconds_per_epoch"] for r in runs]),
        "versions": versions(),
    }
    results = json_safe(results)
    distributed.on_main(world, lambda: write_json(results, out / "results.json"))

    for text in summary_lines(results):
        progress.line(text)
    return results


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The closing lines of a run: test metrics (mean ± std over several seeds) and where the files are."""
    keys, runs, out = results["metric_keys"], results["seeds"], results["settings"]["out"]
    if len(runs) > 1:
        lines = [f"test over {len(runs)} seeds (mean ± population std, as MMSA):"]
        lines += [f"  {text}" for text in format_mean_std(results["test"], keys)]
    else:
        lines = ["test:", f"  {format_metrics(results['test']['mean'], keys)}"]
    seeds = ", ".join(str(r["seed"]) for r in runs)
    lines.append(f"wrote {out}/results.json and the best weights {out}/seed-<s>/best.pt (s = {seeds})")
    return lines


def _build_model(settings: TrainSettings, feature_dims, profile: str | None = None):
    """The zoo model with the run's overrides for data set ``profile`` (default: the settings'), with
    ``feature_dims`` from the data (the profile's dims when None)."""
    try:
        return create_model(settings.model, dataset=profile or settings.dataset, feature_dims=feature_dims,
                            **settings.model_overrides)
    except UnknownModelError as error:
        raise TrainingError(str(error)) from None
    except ValueError as error:
        raise TrainingError(f"cannot build {settings.model!r} with {dict(settings.model_overrides)}: {error}") from None


def parameter_groups(model, recipe: Recipe) -> list[dict[str, Any]]:
    """Adam's parameter groups: the model's own ``optimizer_groups(lr, weight_decay)`` where it has one
    (a baseline with MMSA's per-part learning rate or weight decay), else one group at the recipe's values."""
    groups = getattr(model, "optimizer_groups", None)
    if groups is None:
        return [{"params": list(model.parameters())}]
    return groups(recipe.lr, recipe.weight_decay)


def _mean_std_of(values: list[float | None]) -> dict[str, Any]:
    summary = aggregate([{"value": v} for v in values])
    return {"mean": summary["mean"]["value"], "std": summary["std"]["value"], "n": summary["n"]}


def _prepare_out(out: Path, settings: TrainSettings) -> None:
    """Create the run folder; refuse to mix a new run into an old one."""
    existing = sorted(p.name for p in out.glob("seed-*")) + (["results.json"] if (out / "results.json").exists() else [])
    if settings.resume:
        if not existing:
            raise TrainingError(f"nothing to resume in {out}: it holds no seed-<s>/last.pt; run without --resume to start.")
        return
    if existing and not settings.overwrite:
        raise TrainingError(
            f"{out} already holds a run ({', '.join(existing)}); continue it with --resume, replace it with "
            "--overwrite, or choose another --out."
        )
    if existing:
        for name in existing:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _run_key(settings: TrainSettings, recipe: Recipe, profile: str, seed: int) -> dict[str, Any]:
    data = None if settings.data is None else os.path.abspath(os.path.expanduser(settings.data))
    return json_safe({
        "model": settings.model, "dataset": profile, "data": data, "model_overrides": dict(settings.model_overrides),
        "lr": recipe.lr, "batch_size": recipe.batch_size, "patience": recipe.patience,
        "weight_decay": recipe.weight_decay, "grad_clip": recipe.grad_clip, "seed": seed,
    })


def _check_resumable(state: dict[str, Any], key: dict[str, Any], path: Path) -> None:
    stored = state.get("run_key", {})
    # With the model's full config stored, that config is compared (after the model is built), not how the
    # options asked for it: --v-threshold 1 continues a run made when 1 was the default.
    checked = [k for k in RESUME_KEYS if k != "model_overrides" or not state.get("model", {}).get("config")]
    diffs = [f"{k}: {stored.get(k)!r} then, {key[k]!r} now" for k in checked if stored.get(k) != key[k]]
    if diffs:
        raise CheckpointError(
            f"{path} was written by a run with other settings ({'; '.join(diffs)}); resume with the same options, "
            "or start a new run with another --out."
        )


def _train_seed(
    settings: TrainSettings,
    recipe: Recipe,
    dataset: MSADataset,
    seed: int,
    seed_dir: Path,
    device: torch.device,
    progress: Progress,
    family: str,
    spec_data: dict[str, Any],
    *,
    announce: bool,
    position: tuple[int, int],
    world: distributed.World = distributed.SINGLE,
) -> tuple[dict[str, Any], dict[str, Any]]:
    profile = dataset.profile.name
    last_path, best_path = seed_dir / "last.pt", seed_dir / "best.pt"
    key = _run_key(settings, recipe, profile, seed)
    state = None
    if settings.resume:
        state = distributed.on_main(world, lambda: _resume_state(last_path, key))
    save = _saver(world)

    seed_everything(seed)
    model = _build_model(settings, dataset.feature_dims, profile).to(device)
    optimizer = torch.optim.Adam(parameter_groups(model, recipe), lr=recipe.lr, weight_decay=recipe.weight_decay)
    spec = model_spec(model, dataset.feature_dims)
    parameters = sum(p.numel() for p in model.parameters())
    model_info = {"parameters": parameters, "model_config": spec["config"], "model_overrides": spec["overrides"]}

    if announce:
        n = torch.get_num_threads()
        threads = f" ({n} thread{'s' if n != 1 else ''})" if device.type == "cpu" else ""
        processes = f" x {world.size} processes ({world.backend})" if world.parallel else ""
        progress.line(f"{settings.model}: {parameters:,} parameters on {device}{threads}{processes}; "
                      f"data: {dataset_line(dataset)}")
        progress.line(f"data cleaning: {nonfinite_summary(dataset.valid_nonfinite)}"
                      + (" (more than the usual share accepted with --allow-nonfinite)" if dataset.nonfinite_allowed else ""))
        clip = f"grad clip {recipe.grad_clip:g}" if recipe.grad_clip > 0 else "no grad clip"
        progress.line(
            f"recipe: Adam lr {recipe.lr:g}, batch {recipe.batch_size}, up to {recipe.max_epochs} epochs, early stop "
            f"after {recipe.patience} without a lower validation MAE of M, weight decay {recipe.weight_decay:g}, {clip}"
        )
    progress.line(f"seed {seed} ({position[0]}/{position[1]})" + (f", resuming from {last_path}" if state else ""))

    epoch, best_epoch, best_loss, bad_epochs = 0, 0, math.inf, 0
    best_state, best_valid_metrics, history, stopped_early = None, None, [], False
    if state is not None:
        _check_same_config(state.get("model", {}).get("config"), spec["config"], last_path)
        load_weights(model, state["state_dict"], str(last_path))
        optimizer.load_state_dict(state["optimizer"])
        epoch, best_epoch, best_loss = state["epoch"], state["best_epoch"], state["best_valid_loss"]
        bad_epochs, best_state = state["bad_epochs"], state["best_state"]
        best_valid_metrics, history, stopped_early = state["best_valid_metrics"], list(state["history"]), state["stopped_early"]
        set_rng_state(state["rng"])
        if epoch:
            progress.line(f"  {epoch} epoch(s) done, best epoch {best_epoch} (valid {best_loss:.4f})")

    common = {"model": spec, "data": spec_data, "recipe": recipe.as_dict(), "settings": settings.as_dict(), "seed": seed,
              "threads": torch.get_num_threads(), "world_size": world.size, "versions": versions()}
    trained_model, all_sum = distributed.wrap(model, world, device), distributed.all_sum(world)
    keys = EPOCH_KEYS[family]
    log_dir = None if settings.tensorboard is None or not world.is_main else Path(settings.tensorboard) / f"seed-{seed}"
    log = EpochLog(log_dir, resume_from=epoch)  # rank 0 alone logs
    train_split, valid_split = dataset.splits["train"], dataset.splits["valid"]
    n_batches = math.ceil(len(train_split) / recipe.batch_size)
    while not stopped_early and epoch < recipe.max_epochs:
        epoch += 1
        start = time.perf_counter()
        distributed.seed_rank(world, seed, epoch)
        loader = train_split.loader(recipe.batch_size, shuffle=True, seed=seed, epoch=epoch)
        batches = progress.bar(distributed.train_batches(loader, world), n_batches, f"epoch {epoch}/{recipe.max_epochs}")
        try:
            trained = train_epoch(trained_model, batches, optimizer, device, recipe.grad_clip, all_sum=all_sum)
            valid = distributed.evaluate_split(model, valid_split, recipe.batch_size, device, world)
            if not math.isfinite(valid.loss):
                raise NonFiniteLossError(f"the validation loss is {valid.loss}")
        except NonFiniteLossError as error:
            raise NonFiniteLossError(_nonfinite_message(error, seed, epoch, recipe, last_path, best_path, settings)) from None
        finally:
            _close(batches)
        seconds = time.perf_counter() - start
        valid_metrics = msa_metrics(valid.predictions, valid.labels, profile)
        improved = distributed.from_main(world, valid.loss < best_loss - IMPROVEMENT_MARGIN)
        if improved:
            best_epoch, best_loss, bad_epochs = epoch, valid.loss, 0
            best_state, best_valid_metrics = cpu_state_dict(model), valid_metrics
            save({**common, **_best_payload(best_state, best_epoch, best_loss, best_valid_metrics)}, best_path, "best")
        else:
            bad_epochs += 1
        stopped_early = distributed.from_main(world, bad_epochs >= recipe.patience)
        history.append({
            "epoch": epoch, "train_loss": trained.loss, "valid_loss": valid.loss, "valid_total_loss": valid.total_loss,
            "valid_metrics": valid_metrics, "firing_rate": valid.mean_firing_rate, "seconds": seconds, "best": improved,
        })
        save({
            **common, "run_key": key, "state_dict": cpu_state_dict(model), "optimizer": optimizer.state_dict(),
            "epoch": epoch, "best_state": best_state, "best_epoch": best_epoch, "best_valid_loss": best_loss,
            "best_valid_metrics": best_valid_metrics, "bad_epochs": bad_epochs, "stopped_early": stopped_early,
            "rng": rng_state(), "history": history,
        }, last_path, "last")
        progress.epoch(epoch, recipe.max_epochs, train_loss=trained.loss, valid_loss=valid.loss, metrics=valid_metrics,
                       keys=keys, rate=valid.mean_firing_rate, seconds=seconds, best=improved)
        log.epoch(epoch, train_loss=trained.loss, valid_loss=valid.loss, valid_total_loss=valid.total_loss,
                  metrics=valid_metrics, firing_rates=valid.firing_rates, mean_rate=valid.mean_firing_rate,
                  lr=optimizer.param_groups[0]["lr"])

    if best_state is None:
        raise TrainingError(f"seed {seed}: no epoch was trained (max_epochs {recipe.max_epochs}); nothing to test.")
    load_weights(model, best_state, "the best epoch's weights")
    test = distributed.evaluate_split(model, dataset.splits["test"], recipe.batch_size, device, world)
    test_metrics = msa_metrics(test.predictions, test.labels, profile)
    log.test(best_epoch, test_metrics, test.loss)
    log.close()
    save({
        **common, **_best_payload(best_state, best_epoch, best_loss, best_valid_metrics),
        "test_metrics": test_metrics, "test_loss": test.loss, "firing_rate": test.mean_firing_rate,
        "firing_rates": test.firing_rates, "epochs_run": epoch, "stopped_early": stopped_early,
    }, best_path, "best")
    how = f"stopped early at epoch {epoch}" if stopped_early else f"ran all {epoch} epochs"
    progress.line(f"seed {seed}: best epoch {best_epoch} (valid {best_loss:.4f}), {how}")
    progress.line(f"  test  {format_metrics(test_metrics, METRIC_KEYS[family])}"
                  + ("" if test.mean_firing_rate is None else f"  rate {test.mean_firing_rate:.4f}"))

    seconds = [h["seconds"] for h in history]
    run = {
        "seed": seed,
        "best_epoch": best_epoch,
        "epochs_run": epoch,
        "stopped_early": stopped_early,
        "best_valid_loss": best_loss,
        "valid_metrics": best_valid_metrics,
        "test_metrics": test_metrics,
        "test_loss": test.loss,
        "firing_rate": test.mean_firing_rate,
        "firing_rates": test.firing_rates,
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else None,
        "seconds_total": float(np.sum(seconds)) if seconds else 0.0,
        "checkpoint": str(best_path),
        "history": history,
    }
    return run, model_info


def config_changes(then: dict[str, Any] | None, now: dict[str, Any]) -> list[str]:
    """The model settings that differ between a stored config and the one built now ("key: then -> now").

    A run's overrides are checked on their own; this catches what they do not
    say: a default that changed between versions of snn-msa (V_th was 1 before
    0.75), so that no run continues or is reused with other settings than it
    was trained with. A config stored without a key (an older format) is not
    compared on that key; a group stored flat (before the neuron settings
    became one object) is compared key by key.

    >>> config_changes({"neuron": {"v_threshold": 1.0}}, {"neuron": {"v_threshold": 0.75}})
    ['neuron.v_threshold: 1.0 then, 0.75 now']
    >>> config_changes({"v_threshold": 1.0, "d_model": 64}, {"neuron": {"v_threshold": 0.75}, "d_model": 64})
    ['neuron.v_threshold: 1.0 then, 0.75 now']
    """
    if then is None:
        return []
    changes = []
    for key, value in now.items():
        if key not in then:
            if isinstance(value, dict):  # the group's settings stored flat, as older versions did
                changes += [f"{key}.{change}" for change in config_changes(then, value)]
            continue
        if isinstance(value, dict) and isinstance(then[key], dict):
            changes += [f"{key}.{change}" for change in config_changes(then[key], value)]
        elif json_safe(then[key]) != json_safe(value):
            changes.append(f"{key}: {then[key]!r} then, {value!r} now")
    return changes


def _check_same_config(then: dict[str, Any] | None, now: dict[str, Any], path: Path) -> None:
    changes = config_changes(then, now)
    if changes:
        raise CheckpointError(
            f"{path} was written by a model with other settings ({'; '.join(changes)}): a default changed since "
            "(docs/model.md, Our defaults). Pass the old value as an option (for example --v-threshold 1) to "
            "continue it, or start a new run with another --out."
        )


def _resume_state(last_path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The state in ``last_path`` to continue from (``None`` if this seed has not started)."""
    if not last_path.exists():
        return None
    state = load_checkpoint(last_path, kind="last")
    _check_resumable(state, key, last_path)
    return state


def _saver(world: distributed.World) -> Callable[[dict[str, Any], Path, str], None]:
    """``save_checkpoint`` on rank 0; a failed write (a full disk) is raised on every rank, so none waits for it."""
    def save(payload: dict[str, Any], path: Path, kind: str) -> None:
        distributed.on_main(world, lambda: save_checkpoint(payload, path, kind))

    return save


def _best_payload(state: dict, epoch: int, loss: float, valid_metrics: dict | None) -> dict[str, Any]:
    return {"state_dict": state, "best_epoch": epoch, "best_valid_loss": loss, "valid_metrics": valid_metrics,
            "test_metrics": None}


def _close(batches) -> None:
    close = getattr(batches, "close", None)
    if close is not None:
        close()


def _nonfinite_message(error: Exception, seed: int, epoch: int, recipe: Recipe, last: Path, best: Path,
                       settings: TrainSettings) -> str:
    kept = (f"The last good checkpoint {last} (epoch {epoch - 1}) and the best weights so far {best} are kept."
            if epoch > 1 else "No epoch had completed, so no checkpoint was written.")
    check = f"check the data for NaN or inf values ('snn-msa data check {settings.data}')" if settings.data else "check the data"
    return (f"seed {seed}, epoch {epoch}: {error}; training stopped. {kept} "
            f"Try a lower --lr (this run used {recipe.lr:g}), a smaller --grad-clip, or {check}.")


def dataset_line(dataset: MSADataset) -> str:
    """How the start line names the data; synthetic data says so plainly."""
    sizes = dataset.sizes_text()
    title = dataset.profile.title
    if dataset.is_builtin:
        return (f"built-in SYNTHETIC data shaped like {title} ({sizes} samples), not real features: the metrics "
                "only show that the pipeline learns; pass --data FILE to train on MMSA features")
    tag = ", SYNTHETIC data" if dataset.is_synthetic else ""
    return f"{dataset.source} ({title}{tag}, {sizes} samples)"
