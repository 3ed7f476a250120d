"""Where to read a text LSTM: after the whole zero-padded sequence (MMSA) or at each sample's last real token?

A text-only probe on one MMSA feature file: an LSTM (width 64) and a linear
head regress the text label ``regression_labels_T`` (CH-SIMS-shaped files)
for 15 epochs of Adam (lr 2e-3, batch 32), once per reading, same seed, one
thread. Prints the validation MAE and Pearson correlation of each. This is why
the baselines' text sub-networks read the final state as MMSA does
(docs/baselines.md).

    OMP_NUM_THREADS=1 python benchmarks/text_lstm_reading.py --data sims.pkl
"""

from __future__ import annotations

import argparse

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from snn_msa.data import MSADataset, load_dataset


def split_tensors(dataset: MSADataset, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A whole split as one batch: text features, text lengths and the text labels."""
    batch = next(iter(dataset.splits[split].loader(len(dataset.splits[split]))))
    return batch["text"], batch["text_lengths"], batch["labels"]["T"]


def probe(train, valid, packed: bool, epochs: int = 15, seed: int = 0) -> tuple[float, float]:
    torch.manual_seed(seed)
    x, lengths, y = train
    rnn, head = torch.nn.LSTM(x.shape[-1], 64, batch_first=True), torch.nn.Linear(64, 1)
    optimizer = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=2e-3)

    def predict(xs, ls):
        if packed:
            _, (h, _) = rnn(pack_padded_sequence(xs, ls.cpu(), batch_first=True, enforce_sorted=False))
        else:
            _, (h, _) = rnn(xs)
        return head(h[-1]).squeeze(-1)

    for _ in range(epochs):
        order = torch.randperm(len(y))
        for i in range(0, len(y), 32):
            idx = order[i:i + 32]
            loss = (predict(x[idx], lengths[idx]) - y[idx]).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        p = predict(valid[0], valid[1])
    return float((p - valid[2]).abs().mean()), float(torch.corrcoef(torch.stack([p, valid[2]]))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a CH-SIMS-shaped MMSA feature file (it needs regression_labels_T)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = load_dataset(args.data, "sims")
    train, valid = split_tensors(dataset, "train"), split_tensors(dataset, "valid")
    for packed in (False, True):
        mae, corr = probe(train, valid, packed)
        name = "last real token (packed)" if packed else "end of the padded sequence (MMSA)"
        print(f"{name}: valid MAE {mae:.4f}, Corr {corr:.4f}")


if __name__ == "__main__":
    main()
