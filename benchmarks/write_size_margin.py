"""How close a written feature file's size is to the bytes of its arrays (the free-space check's margin).

``snn_msa.data.files.estimated_size`` adds SIZE_MARGIN and SIZE_SLACK to the
arrays' bytes before an HDF5 or pickle write; this prints the measured ratio
file size / array bytes for synthetic files shaped like each profile.

    OMP_NUM_THREADS=1 python benchmarks/write_size_margin.py --n 64,16,16
"""

from __future__ import annotations

import argparse
import os
import tempfile

from snn_msa.data.files import SIZE_MARGIN, SIZE_SLACK, estimated_size
from snn_msa.data.hdf5_store import write_store
from snn_msa.data.synthetic import make_synthetic, write_pickle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="64,16,16", help="samples per split (train,valid,test)")
    parser.add_argument("--profiles", default="sims,mosi")
    args = parser.parse_args()
    sizes = tuple(int(x) for x in args.n.split(","))
    with tempfile.TemporaryDirectory() as folder:
        for profile in args.profiles.split(","):
            data = make_synthetic(profile, sizes)
            arrays = (estimated_size(data) - SIZE_SLACK) / (1 + SIZE_MARGIN)
            for ext, write in (("h5", write_store), ("pkl", write_pickle)):
                path = os.path.join(folder, f"{profile}.{ext}")
                write(data, path)
                size = os.path.getsize(path)
                print(f"{profile:6s} {ext:3s} arrays {arrays / 2**20:7.2f} MiB  file {size / 2**20:7.2f} MiB  "
                      f"file/arrays {size / arrays:.4f}  estimate {estimated_size(data) / 2**20:7.2f} MiB")


if __name__ == "__main__":
    main()
