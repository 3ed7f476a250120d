r"""Data-parallel training under ``torchrun``: one process per device, ``DistributedDataParallel``.

``torchrun --nproc-per-node N $(which snn-msa) train ...`` starts N copies of the
command and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`start` reads
them and joins the process group (gloo on the CPU, NCCL on GPUs, where rank r of
a node drives ``cuda:LOCAL_RANK``). Without them (or with ``WORLD_SIZE=1``) it
returns :data:`SINGLE` and every function here is the identity of the one-process path.

**The global batch.** ``--batch-size B`` stays the global batch. The one-process
run's batch b of an epoch is ``order[b B : (b + 1) B]``; rank r takes the r-th of
N contiguous parts of it (:func:`shard`, sizes differ by at most one), so an epoch
visits the same global batches whatever N is, and each rank reads only its rows
(an HDF5 store stays lazy).

**The gradient.** ``SGMT.loss`` is a mean over the samples of a batch,
:math:`\mathcal{L}_r = \frac{1}{n_r} \sum_{i \in r} L_i`, and DDP averages the
ranks' gradients. Rank r's loss is scaled by :math:`w_r = N n_r / B`, so

.. math::

    \frac{1}{N} \sum_r w_r \nabla \mathcal{L}_r = \frac{1}{B} \sum_{i \in \text{batch}} \nabla L_i,

the one-process gradient of the global batch, also when the shards are of
unequal size. A rank whose share of a short last batch is empty runs one sample
of the batch with :math:`w_r = 0`, so every rank takes part in DDP's all-reduce.

**Evaluation.** The split's batches are dealt out to the ranks (batch b to rank
b mod N) and gathered back in order, so each sample counts exactly once (a
``DistributedSampler`` would pad with repeats), each batch is the one a
one-process run scores, and the metrics are computed on the gathered predictions.

**Writes and decisions.** Rank 0 alone writes logs, checkpoints and results;
the early-stopping decision is rank 0's, broadcast to all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError, NonFiniteLossError, TrainingError
from .loop import Evaluation, activity_rates, evaluate
from .settings import resolve_device

T = TypeVar("T")
# Errors rank 0 can pass on to the other ranks by name (the rest arrive as TrainingError).
_ERRORS = {cls.__name__: cls for cls in (TrainingError, CheckpointError, NonFiniteLossError)}


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel processes.

    Attributes:
        rank: global rank, 0 to ``size - 1``.
        size: number of processes (the world size).
        local_rank: rank on this node (the GPU it drives).
        backend: ``"gloo"`` or ``"nccl"``; ``None`` in a one-process run.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        """More than one process."""
        return self.size > 1


SINGLE = World()


def world_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The :class:`World` that torchrun's variables describe (:data:`SINGLE` when they are absent)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        size, rank, local = int(env["WORLD_SIZE"]), int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0))
    except ValueError:
        raise TrainingError(
            f"torchrun's WORLD_SIZE, RANK and LOCAL_RANK must be integers, got {env.get('WORLD_SIZE')!r}, "
            f"{env.get('RANK')!r}, {env.get('LOCAL_RANK')!r}; start the command with torchrun or unset them."
        ) from None
    if size < 1 or not 0 <= rank < size or local < 0:
        raise TrainingError(f"WORLD_SIZE {size}, RANK {rank}, LOCAL_RANK {local} do not describe a process of a "
                            "group; start the command with torchrun or unset them.")
    return World(rank=rank, size=size, local_rank=local) if size > 1 else SINGLE


def is_main_process() -> bool:
    """Whether this process is rank 0 of torchrun's group, or runs alone (it then prints errors)."""
    return os.environ.get("RANK", "0") in ("", "0")


def start(device: str) -> tuple[World, torch.device]:
    """Join torchrun's process group if there is one; return the world and this process's device.

    ``device`` is the ``--device`` choice; under torchrun ``cuda`` (or ``auto``
    with GPUs) means ``cuda:LOCAL_RANK``, made the current device so that
    every kernel, the CuPy one included, launches on it and its current stream.
    """
    world = world_from_env()
    chosen = resolve_device(device)
    if not world.parallel:
        return world, chosen
    import torch.distributed as dist

    if chosen.type == "cuda":
        count = torch.cuda.device_count()
        per_node = max(int(os.environ.get("LOCAL_WORLD_SIZE", 0) or 0), world.local_rank + 1)
        if per_node > count:  # every process of the node says so, rank 0 included, so the line is printed
            raise TrainingError(f"{per_node} processes on a node with {count} GPU(s): each process needs a GPU of "
                                f"its own; start at most {count} per node (--nproc-per-node), or use --device cpu.")
        chosen = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(chosen)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return World(rank=world.rank, size=world.size, local_rank=world.local_rank, backend=backend), chosen


def stop(world: World) -> None:
    """Leave the process group that :func:`start` joined."""
    if world.parallel:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def check_world_size(world: World, train_samples: int, batch_size: int) -> None:
    """Every rank needs a share of every full global batch."""
    if world.size > train_samples:
        raise TrainingError(f"{world.size} processes for a training split of {train_samples} samples: each process "
                            f"needs at least one; start at most {train_samples} (--nproc-per-node x nodes).")
    if world.size > batch_size:
        raise TrainingError(f"--batch-size {batch_size} is the global batch, smaller than the {world.size} processes "
                            f"that share it; use --batch-size {world.size} or more, or fewer processes.")


def shard(index: np.ndarray, rank: int, size: int) -> np.ndarray:
    """Rank ``rank``'s contiguous part of ``index`` among ``size`` parts (sizes differ by at most one).

    >>> [shard(np.arange(5), r, 2).tolist() for r in range(2)]
    [[0, 1, 2], [3, 4]]
    """
    return np.array_split(np.asarray(index), size)[rank]


@dataclass(frozen=True)
class ShardedBatches:
    """This rank's share of each global batch of ``loader`` (a :class:`~snn_msa.data.BatchLoader`).

    Each batch dict carries ``samples`` (this rank's real samples), ``global_samples``
    (the global batch) and ``loss_scale`` (:math:`w_r = N n_r / B`).
    """

    loader: Any
    world: World

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order, size, split = self.loader.order(), self.loader.batch_size, self.loader.split
        for b in range(len(self.loader)):
            batch_index = order[b * size : (b + 1) * size]
            local = shard(batch_index, self.world.rank, self.world.size)
            stand_in = local.size == 0  # a short last batch: keep DDP's all-reduce matched, add nothing
            batch = split.batch(batch_index[:1] if stand_in else local)
            batch["samples"] = int(local.size)
            batch["global_samples"] = int(batch_index.size)
            batch["loss_scale"] = self.world.size * local.size / batch_index.size
            yield batch


def train_batches(loader: Any, world: World) -> Iterable[dict[str, Any]]:
    """``loader`` itself in a one-process run, else this rank's :class:`ShardedBatches`."""
    return ShardedBatches(loader, world) if world.parallel else loader


def wrap(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """The module that trains: ``model`` itself, or ``DistributedDataParallel(model)`` under torchrun.

    DDP broadcasts rank 0's weights and buffers (the connected neuron's fixed
    omega, a few kB) when it wraps the model, so every rank starts equal.
    """
    if not world.parallel:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def all_sum(world: World) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function that sums a tensor over the ranks (``None`` in a one-process run)."""
    if not world.parallel:
        return None
    import torch.distributed as dist

    def summed(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    return summed


def evaluate_split(model: nn.Module, split: Any, batch_size: int, device: torch.device, world: World) -> Evaluation:
    """:func:`~snn_msa.training.loop.evaluate` over ``split`` in batches of ``batch_size``, shared among the ranks.

    The batches are those of a one-process run; rank r scores batches r, r + N,
    r + 2N, ..., and all ranks gather them back in order. Each batch is scored
    exactly as one process scores it, so a one-process ``snn-msa eval`` of the
    checkpoint reproduces the metrics, and every rank returns the same
    :class:`Evaluation`, in the split's order.
    """
    if not world.parallel:
        return evaluate(model, split.loader(batch_size), device)
    rows = np.arange(len(split))
    chunks = [rows[i : i + batch_size] for i in range(0, rows.size, batch_size)]
    mine = [evaluate(model, [split.batch(chunk)], device) for chunk in chunks[world.rank :: world.size]]
    per_rank = gather(world, mine)
    return merge_evaluations([per_rank[b % world.size][b // world.size] for b in range(len(chunks))])


def merge_evaluations(parts: Sequence[Evaluation]) -> Evaluation:
    """One :class:`Evaluation` of consecutive parts of a split: losses weighted by samples, spikes and
    neuron-steps added up, per-sample arrays joined in order."""
    counts = np.array([len(p.predictions) for p in parts], dtype=np.float64)
    if not parts or counts.sum() == 0:
        raise ValueError("no part holds a sample; the split needs at least one.")

    def mean(values: Iterable[float]) -> float:
        return float(np.dot(np.fromiter(values, dtype=np.float64, count=len(parts)), counts) / counts.sum())

    activity = {name: (sum(p.activity[name][0] for p in parts), sum(p.activity[name][1] for p in parts))
                for name in parts[0].activity}
    firing_rates, mean_firing_rate = activity_rates(activity)
    sample_rates = [p.sample_firing_rates for p in parts]
    return Evaluation(
        loss=mean(p.loss for p in parts),
        total_loss=mean(p.total_loss for p in parts),
        predictions=np.concatenate([p.predictions for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        firing_rates=firing_rates,
        mean_firing_rate=mean_firing_rate,
        sample_firing_rates=None if any(r is None for r in sample_rates) else np.concatenate(sample_rates),
        ids=[i for p in parts for i in p.ids],
        activity=activity,
    )


def gather(world: World, value: T) -> list[T]:
    """Every rank's ``value``, in rank order (``[value]`` in a one-process run)."""
    if not world.parallel:
        return [value]
    import torch.distributed as dist

    values: list[Any] = [None] * world.size
    dist.all_gather_object(values, value)
    return values


def from_main(world: World, value: T) -> T:
    """Rank 0's ``value`` on every rank: a decision taken once and obeyed by all."""
    if not world.parallel:
        return value
    import torch.distributed as dist

    box = [value if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(world: World, task: Callable[[], T]) -> T:
    """Run ``task`` on rank 0 only and give its result to every rank.

    An error on rank 0 is raised on every rank (the expected ones by their own
    class, others as :class:`TrainingError`), so no rank waits for a
    collective that rank 0 will never reach.
    """
    if not world.parallel:
        return task()
    outcome: tuple[str, Any] = ("", None)
    if world.is_main:
        try:
            outcome = ("ok", task())
        except Exception as error:
            from_main(world, ("error", (type(error).__name__, str(error))))  # release the waiting ranks first
            raise
    outcome = from_main(world, outcome)
    kind, value = outcome
    if kind == "error":
        name, message = value
        raise _ERRORS.get(name, TrainingError)(message)
    return value


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of rank ``rank > 0`` at the start of ``epoch``: its own dropout masks, equal on a resume."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, dtype=np.uint64)[0] % 2**63)


def seed_rank(world: World, seed: int, epoch: int) -> None:
    """Give ranks other than 0 their own torch stream for ``epoch`` (rank 0 keeps the one-process stream)."""
    if world.rank > 0:
        torch.manual_seed(rank_seed(seed, epoch, world.rank))
