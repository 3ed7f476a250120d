"""Write an MMSA feature file whose statistics differ from the built-in generator's, for checks that must not be tuned to it.

The built-in data (snn_msa/data/synthetic.py) is SIMS-shaped, with AR(1)
Gaussian backgrounds, a 30x spread of channel scales and one short event per
modality that carries the label. This file is written by separate code with
other choices, closer to other real-feature quirks:

- MOSEI-shaped: 768 text, 74 audio (COVAREP-like), 35 vision (Facet-like)
  features; labels in [-3, 3] rounded to thirds, as MOSEI's averaged ratings.
- Heavy tails: Student-t noise (3 degrees of freedom) instead of Gaussian.
- Other time structure: audio is a slow random walk pulled back to zero
  (rho 0.97), vision holds values for a few frames then jumps (sample and hold,
  as action-unit detectors output), text shares a per-sample "topic" vector
  across all its tokens plus token noise.
- Channel scales over three decades (10^-1.5 .. 10^1.5), large offsets, a few
  constant channels (zero variance), vision channels that are 0/1 indicators.
- The label is a nonlinear mix of three modality cues of other kinds: the
  topic's projection on a direction over 24 dimensions (text), the share of
  frames where one audio channel is above a level (a rate code), and the trend
  of two vision channels over the clip (a slope), passed through tanh and
  rounded to thirds. A ridge probe on mean-pooled features reaches test Corr
  about 0.6: learnable, not trivial.
- Lengths drawn uniformly between a quarter and all of the padded length.

    python benchmarks/other_statistics_file.py --out /tmp/other_mosei.pkl
    python benchmarks/other_statistics_file.py --standardize --out /tmp/other_mosei_z.pkl
    snn-msa data check /tmp/other_mosei.pkl
"""

from __future__ import annotations

import argparse
import pickle

import numpy as np

DIMS = {"text": 768, "audio": 74, "vision": 35}
LENGTHS = {"text": 50, "audio": 150, "vision": 100}
SIZES = {"train": 600, "valid": 120, "test": 200}
TEXT_CUE_DIMS = 24  # text dimensions the topic cue reads


def heavy_noise(rng, shape):
    return rng.standard_t(3, size=shape).astype(np.float32) / np.sqrt(3.0)


def random_walk(rng, n, length, dim, rho=0.97):
    steps = heavy_noise(rng, (n, length, dim)) * np.sqrt(1 - rho**2)
    out = np.empty_like(steps)
    out[:, 0] = heavy_noise(rng, (n, dim))
    for t in range(1, length):
        out[:, t] = rho * out[:, t - 1] + steps[:, t]
    return out


def sample_and_hold(rng, n, length, dim, mean_hold=6):
    values = heavy_noise(rng, (n, length, dim))
    jumps = rng.random((n, length, dim)) < 1.0 / mean_hold
    jumps[:, 0] = True
    index = np.where(jumps, np.arange(length)[None, :, None], 0)
    index = np.maximum.accumulate(index, axis=1)
    return np.take_along_axis(values, index, axis=1)


def channel_units(rng, dim, constant=0):
    scale = 10 ** rng.uniform(-1.5, 1.5, size=dim).astype(np.float32)
    offset = (rng.normal(size=dim) * 3 * scale).astype(np.float32)
    if constant:
        scale[rng.choice(dim, size=constant, replace=False)] = 0.0
    return scale, offset


def make_split(rng, units, directions, n):
    lengths = {m: rng.integers(max(2, LENGTHS[m] // 4), LENGTHS[m] + 1, size=n) for m in DIMS}
    lengths["text"] = np.maximum(lengths["text"], 3)

    topic = heavy_noise(rng, (n, DIMS["text"]))
    text = 0.8 * topic[:, None, :] + 0.6 * heavy_noise(rng, (n, LENGTHS["text"], DIMS["text"]))
    text[:, :, :2] += 12.0  # two outlier dimensions, as BERT's
    cue_text = np.tanh(topic @ directions["text"] / np.sqrt(TEXT_CUE_DIMS))

    audio = random_walk(rng, n, LENGTHS["audio"], DIMS["audio"])
    frames_a = np.arange(LENGTHS["audio"])[None, :] < lengths["audio"][:, None]
    above = (audio[:, :, 3] > 0.4) & frames_a
    cue_audio = 2 * above.sum(1) / lengths["audio"] - 0.7

    vision = sample_and_hold(rng, n, LENGTHS["vision"], DIMS["vision"])
    slope = rng.uniform(-1, 1, size=n).astype(np.float32)
    ramp = np.arange(LENGTHS["vision"])[None, :] / lengths["vision"][:, None]
    vision[:, :, 5] += 1.5 * slope[:, None] * ramp
    vision[:, :, 6] -= 1.5 * slope[:, None] * ramp
    vision[:, :, -8:] = vision[:, :, -8:] > 0.5  # indicator channels
    cue_vision = slope

    label = 3 * np.tanh(0.5 * (0.9 * cue_text + 0.8 * cue_audio + 0.7 * cue_vision + 0.5 * cue_text * cue_vision))
    label = np.clip(np.round(label * 3) / 3, -3, 3).astype(np.float32)

    out = {}
    for m, x in (("text", text), ("audio", audio), ("vision", vision)):
        scale, offset = units[m]
        x = x * scale + offset
        x[np.arange(LENGTHS[m])[None, :] >= lengths[m][:, None]] = 0.0
        out[m] = x.astype(np.float32)
    out["text_bert"] = np.zeros((n, 3, LENGTHS["text"]), dtype=np.float32)
    out["text_bert"][:, 1] = np.arange(LENGTHS["text"])[None, :] < lengths["text"][:, None]
    out["audio_lengths"] = lengths["audio"].tolist()
    out["vision_lengths"] = lengths["vision"].tolist()
    out["regression_labels"] = label
    out["id"] = np.array([f"other_{i:05d}" for i in range(n)])
    out["raw_text"] = np.array([f"sample {i}" for i in range(n)])
    return out


def valid_mask(split: dict, modality: str) -> np.ndarray:
    """[n, length] True at each sample's valid positions of ``modality``."""
    lengths = (split["text_bert"][:, 1].sum(1).astype(int) if modality == "text"
               else np.array(split[f"{modality}_lengths"]))
    return np.arange(split[modality].shape[1])[None, :] < lengths[:, None]


def standardize(data: dict) -> None:
    """Z-score every channel with the mean and std of the train split's valid positions (padding stays 0)."""
    for modality in DIMS:
        cells = data["train"][modality][valid_mask(data["train"], modality)]
        mean, std = cells.mean(0), cells.std(0) + 1e-6
        for split in data.values():
            keep = valid_mask(split, modality)[:, :, None]
            split[modality] = (((split[modality] - mean) / std) * keep).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--standardize", action="store_true",
                        help="z-score every channel with the train split's statistics before writing")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    units = {"text": (np.ones(DIMS["text"], np.float32), np.zeros(DIMS["text"], np.float32)),
             "audio": channel_units(rng, DIMS["audio"], constant=3),
             "vision": channel_units(rng, DIMS["vision"], constant=2)}
    units["vision"][0][-8:], units["vision"][1][-8:] = 1.0, 0.0  # indicators stay 0/1
    direction = np.zeros(DIMS["text"], np.float32)
    direction[rng.choice(np.arange(2, DIMS["text"]), size=TEXT_CUE_DIMS, replace=False)] = rng.normal(size=TEXT_CUE_DIMS)
    directions = {"text": direction}
    data = {split: make_split(rng, units, directions, n) for split, n in SIZES.items()}
    if args.standardize:
        standardize(data)
    with open(args.out, "wb") as f:
        pickle.dump(data, f, protocol=4)
    print(f"wrote {args.out}: " + ", ".join(f"{s} {n}" for s, n in SIZES.items()))
    guess = float(np.mean(data["train"]["regression_labels"]))
    print(f"test MAE of always predicting the train labels' mean: "
          f"{float(np.mean(np.abs(data['test']['regression_labels'] - guess))):.4f}")


if __name__ == "__main__":
    main()
