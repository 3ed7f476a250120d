"""How much of the label a crude pooling model can read from a data set: a ridge probe on time statistics.

Each sample becomes, per modality and channel, the mean, max and min over its
valid positions; a ridge regression (the best of a few penalties) fits the
training split and is scored by its Pearson correlation on the test split.
Used to size the built-in synthetic data's events (docs/data.md). Nothing is asserted.

    python benchmarks/synthetic_probe.py                  # built-in data shaped like CH-SIMS
    python benchmarks/synthetic_probe.py --data file.pkl --dataset mosi
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from snn_msa.data import MSADataset


def time_statistics(split) -> np.ndarray:
    """``[n, 9 D]``: mean, max and min over valid positions of each modality's channels."""
    batch = split.batch(np.arange(len(split)))
    columns = []
    for modality in ("text", "audio", "vision"):
        x = batch[modality].double().numpy()
        lengths = batch[f"{modality}_lengths"]
        lengths = np.full(len(x), x.shape[1]) if lengths is None else lengths.numpy()
        mask = (np.arange(x.shape[1])[None, :] < lengths[:, None])[:, :, None]
        columns += [(x * mask).sum(1) / lengths[:, None], np.where(mask, x, -np.inf).max(1),
                    np.where(mask, x, np.inf).min(1)]
    return np.concatenate(columns, axis=1)


def ridge_probe(dataset: MSADataset) -> float:
    train, test = time_statistics(dataset.splits["train"]), time_statistics(dataset.splits["test"])
    mean, std = train.mean(0), train.std(0) + 1e-9
    train, test = (train - mean) / std, (test - mean) / std
    y_train = dataset.splits["train"].labels("M").astype(np.float64)
    y_test = dataset.splits["test"].labels("M").astype(np.float64)
    best = -1.0
    for penalty in (1, 10, 100, 1000, 10000):
        w = np.linalg.solve(train.T @ train + penalty * np.eye(train.shape[1]), train.T @ (y_train - y_train.mean()))
        best = max(best, float(np.corrcoef(test @ w + y_train.mean(), y_test)[0, 1]))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--dataset", default="sims")
    args = parser.parse_args()
    from snn_msa.data import load_dataset

    dataset = load_dataset(args.data, args.dataset, seed=0)
    print(f"{dataset.source}: ridge probe test correlation {ridge_probe(dataset):.3f}")


if __name__ == "__main__":
    main()
