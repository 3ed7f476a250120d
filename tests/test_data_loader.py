"""MSADataset / MSASplit / loader: the contract the trainer and the energy report rely on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snn_msa.data import MSADataset, MSASplit, load_dataset


@pytest.fixture(scope="module")
def sims() -> MSADataset:
    return load_dataset(None, "sims", synthetic_sizes=(10, 4, 3), seed=4)


def test_dataset_attributes(sims):
    assert set(sims.splits) == {"train", "valid", "test"} and all(isinstance(s, MSASplit) for s in sims.splits.values())
    assert sims.feature_dims == (768, 33, 709) and sims.seq_lens == (39, 400, 55)
    assert sims.has_modality_labels and not sims.aligned and sims.is_synthetic
    assert sims.source == "built-in synthetic data shaped like CH-SIMS"
    assert set(sims.cleaning) == {"train", "valid", "test"} and set(sims.cleaning["train"]) == {"text", "audio", "vision"}
    assert len(sims.splits["train"]) == 10


def test_batch_contract(sims):
    batch = next(iter(sims.splits["train"].loader(batch_size=4)))
    assert batch["text"].dtype == torch.float32 and tuple(batch["text"].shape) == (4, 39, 768)
    assert tuple(batch["audio"].shape) == (4, 400, 33) and tuple(batch["vision"].shape) == (4, 55, 709)
    for key in ("text_lengths", "audio_lengths", "vision_lengths"):
        assert batch[key].dtype == torch.int64 and tuple(batch[key].shape) == (4,)
    assert set(batch["labels"]) == {"M", "T", "A", "V"}
    assert all(v.dtype == torch.float32 and tuple(v.shape) == (4,) for v in batch["labels"].values())
    assert batch["ids"] == sims.splits["train"].ids[:4] and all(isinstance(i, str) for i in batch["ids"])


def test_loader_is_reiterable_deterministic_and_epoch_dependent(sims):
    split = sims.splits["train"]
    loader = split.loader(batch_size=3, shuffle=True, seed=1, epoch=0)
    first = [b["ids"] for b in loader]
    assert first == [b["ids"] for b in loader] == [b["ids"] for b in split.loader(3, True, 1, epoch=0)]
    assert first != [b["ids"] for b in split.loader(3, True, 1, epoch=1)]
    assert first != [b["ids"] for b in split.loader(3, True, 2, epoch=0)]
    assert sorted(sum(first, [])) == sorted(split.ids)
    assert [b["ids"] for b in split.loader(3)] == [split.ids[i:i + 3] for i in range(0, 10, 3)]


def test_len_and_drop_last(sims):
    split = sims.splits["train"]
    assert len(split.loader(4)) == 3 and [len(b["ids"]) for b in split.loader(4)] == [4, 4, 2]
    assert len(split.loader(4, drop_last=True)) == 2 and [len(b["ids"]) for b in split.loader(4, drop_last=True)] == [4, 4]
    with pytest.raises(ValueError):
        split.loader(0)


def test_labels_for_the_whole_split(sims):
    split = sims.splits["valid"]
    labels = split.labels()
    assert labels.dtype == np.float32 and labels.shape == (4,)
    batches = torch.cat([b["labels"]["M"] for b in split.loader(3)])
    assert np.array_equal(batches.numpy(), labels)
    assert split.labels("T").shape == (4,) and split.label_names == ("M", "T", "A", "V")
    labels[:] = 9  # a copy: the split is not changed
    assert split.labels().max() <= 1


def test_mosi_has_only_the_multimodal_label():
    mosi = load_dataset(None, "mosi", synthetic_sizes=(2, 1, 1))
    split = mosi.splits["train"]
    assert not mosi.has_modality_labels and split.label_names == ("M",)
    with pytest.raises(KeyError, match="only the multimodal label"):
        split.labels("T")
    assert set(next(iter(split.loader(2)))["labels"]) == {"M"}


def test_describe_is_one_line(sims):
    text = sims.describe()
    assert "\n" not in text and "SYNTHETIC" in text and "10/4/3" in text
