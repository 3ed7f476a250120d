"""How well sgmt-tav fits the small synthetic problem of tests/test_zoo.py, over seeds and thread counts.

The test trains once (seed 0, one thread) and asserts that the test MAE is under
a fraction of the predict-the-mean baseline; this script shows how far each seed
and thread count lands from that limit, so the limit is set from a spread, not
from one run. Each run takes about half a minute on one core.

Examples:

    python benchmarks/zoo_fit_spread.py                      # seeds 0-3, one thread
    python benchmarks/zoo_fit_spread.py --seeds 0,1 --threads 1,2
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1] / "tests" / "test_zoo.py"


def load_fit_ratio():
    """The test's own training function, so that the figures are of exactly what the test runs."""
    spec = importlib.util.spec_from_file_location("test_zoo", TESTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fit_ratio, module.FIT_LIMIT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated seeds (default: 0,1,2,3)")
    parser.add_argument("--threads", default="1", help="comma-separated torch thread counts (default: 1)")
    args = parser.parse_args()
    fit_ratio, limit = load_fit_ratio()
    print(f"test MAE / baseline MAE of sgmt-tav on tests/test_zoo.py's problem (the test asserts < {limit} at seed 0, 1 thread)")
    print(f"torch {torch.__version__}")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        ratios = []
        for seed in (int(s) for s in args.seeds.split(",")):
            start = time.perf_counter()
            ratios.append(fit_ratio(seed))
            print(f"threads {threads}  seed {seed}  ratio {ratios[-1]:.3f}  ({time.perf_counter() - start:.0f} s)", flush=True)
        print(f"threads {threads}: max {max(ratios):.3f}, median {statistics.median(ratios):.3f}, min {min(ratios):.3f}")


if __name__ == "__main__":
    main()
