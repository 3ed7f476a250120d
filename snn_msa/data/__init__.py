"""MMSA feature files (CH-SIMS, CH-SIMS v2, CMU-MOSI, CMU-MOSEI): safe loading, HDF5 store, synthetic data.

- :func:`load_dataset` reads an MMSA pickle (with a restricted unpickler) or an
  HDF5 store (lazily, batch by batch), or makes built-in synthetic data, and
  returns one :class:`MSADataset` that the trainer and the energy report share.
- :mod:`snn_msa.data.hdf5_store` converts pickles to HDF5 stores and back.
- :mod:`snn_msa.data.synthetic` writes synthetic data in the MMSA format.
- :func:`snn_msa.data.check.check_file` reports on a file and every problem in it.

Every expected failure is a :class:`DataError` whose message names the file,
split and key.
"""

from .dataset import BatchLoader, MSADataset, MSASplit, load_dataset
from .errors import DataError

__all__ = ["load_dataset", "MSADataset", "MSASplit", "BatchLoader", "DataError"]
