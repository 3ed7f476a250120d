"""Train an MMSA 2.2.1 baseline with MMSA's own code on the CPU, for docs/baselines.md.

Run it with the Python of a separate environment that has ``mmsa==2.2.1``
(not snn-msa's): MMSA's ``run()`` assumes CUDA, so this script first points
its device choice at the CPU. It prints one JSON line: the test metrics, the
epochs run and the seconds per epoch (training plus validation, as ours).

    python -m venv --system-site-packages /tmp/mmsa-venv
    /tmp/mmsa-venv/bin/pip install mmsa==2.2.1 easydict transformers nvidia-ml-py3
    OMP_NUM_THREADS=1 /tmp/mmsa-venv/bin/python benchmarks/mmsa_reference_run.py --model tfn --data sims.pkl
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def hide_vision_and_audio_extensions() -> None:
    """MMSA imports transformers, which imports torchvision and torchaudio when they are installed; built for
    another torch they fail to load, and MMSA's text-feature models need neither."""
    import transformers.utils as utils
    import transformers.utils.import_utils as import_utils

    for name in ("is_torchvision_available", "is_torchvision_v2_available", "is_torchaudio_available"):
        setattr(import_utils, name, lambda: False)
        setattr(utils, name, lambda: False)


def patch_cpu() -> None:
    """MMSA 2.2.1 calls torch.cuda.set_device and picks a GPU; on a CPU machine both must become the CPU."""
    import MMSA.run as mmsa_run

    torch.cuda.set_device = lambda *args, **kwargs: None
    mmsa_run.assign_gpu = lambda *args, **kwargs: torch.device("cpu")


def patch_scheduler() -> None:
    """MMSA 2.2.1's MulT trainer passes ``verbose=True`` to ReduceLROnPlateau, which torch 2.13 no longer takes."""
    import importlib
    import sys

    from torch.optim.lr_scheduler import ReduceLROnPlateau

    importlib.import_module("MMSA.trains.singleTask.MULT")
    mult_trainer = sys.modules["MMSA.trains.singleTask.MULT"]  # the package's attribute MULT is the class

    class Plateau(ReduceLROnPlateau):
        def __init__(self, *args, verbose=None, **kwargs):
            super().__init__(*args, **kwargs)

    mult_trainer.ReduceLROnPlateau = Plateau


def time_epochs() -> dict:
    """Wrap the MMSA trainer's per-epoch validation so every epoch's wall time is recorded."""
    from MMSA.trains import ATIO

    record = {"epochs": 0, "start": None, "seconds": []}
    original = ATIO.getTrain

    def get_train(self, args):
        trainer = original(self, args)
        record["start"] = time.perf_counter()  # the data is loaded and the model built: the first epoch starts
        do_test = trainer.do_test

        def timed(model, dataloader, mode="VAL", **kwargs):
            result = do_test(model, dataloader, mode=mode, **kwargs)
            if mode == "VAL":
                now = time.perf_counter()
                record["seconds"].append(now - record["start"])
                record["start"] = now
                record["epochs"] += 1
            return result

        trainer.do_test = timed
        return trainer

    ATIO.getTrain = get_train
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="MMSA model name, e.g. lf_dnn, tfn, mult")
    parser.add_argument("--data", required=True, help="a SIMS-shaped MMSA feature pickle")
    parser.add_argument("--seed", type=int, default=1111)
    parser.add_argument("--early-stop", type=int, default=None, help="MMSA's early_stop (default: its config's 8)")
    parser.add_argument("--out", default="/tmp/mmsa-reference", help="MMSA's model, result and log folders")
    args = parser.parse_args()
    torch.set_num_threads(1)
    hide_vision_and_audio_extensions()
    patch_cpu()
    patch_scheduler()
    record = time_epochs()
    from MMSA import MMSA_run

    import MMSA.run as mmsa_run

    results = {}
    run_one = mmsa_run._run

    def keep_result(*a, **kw):  # MMSA_run returns nothing; its _run returns the test metrics
        results.update(run_one(*a, **kw))
        return results

    mmsa_run._run = keep_result
    started = time.perf_counter()
    config = {"featurePath": args.data, **({"early_stop": args.early_stop} if args.early_stop else {})}
    MMSA_run(args.model, "sims", config=config, seeds=[args.seed], gpu_ids=[],
                       num_workers=0, verbose_level=0, model_save_dir=f"{args.out}/models",
                       res_save_dir=f"{args.out}/results", log_dir=f"{args.out}/logs")
    seconds = record["seconds"]
    print(json.dumps({"model": args.model, "seed": args.seed, "test": results, "epochs": record["epochs"],
                      "seconds_per_epoch": sum(seconds) / len(seconds) if seconds else None,
                      "seconds_total": time.perf_counter() - started, "torch_threads": torch.get_num_threads()},
                     default=float))


if __name__ == "__main__":
    main()
