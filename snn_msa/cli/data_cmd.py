"""``snn-msa data``: check, convert, standardise and synthesise MMSA feature files."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from .options import DATASET_CHOICE, allow_nonfinite_option


def _sizes(text: str) -> tuple[int, int, int]:
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise click.BadParameter(f"expected three positive counts TRAIN,VALID,TEST such as 192,48,48; got {text!r}.")
    return sizes  # type: ignore[return-value]


@click.group("data")
def data() -> None:
    """Check, convert, standardise and synthesise MMSA feature files.

    \b
    Examples:
      snn-msa data check ~/data/SIMS/unaligned_39.pkl
      snn-msa data convert ~/data/MOSEI/unaligned_50.pkl mosei.h5
      snn-msa data standardize ~/data/MOSEI/unaligned_50.pkl mosei_z.pkl
      snn-msa data synth --like simsv2 --out simsv2_synth.pkl --n 192,48,48
    """


@data.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dataset", type=DATASET_CHOICE, default=None,
              help="Profile to check against; inferred from the feature dims when left out.")
@allow_nonfinite_option
@click.option("--json", "json_", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def check(ctx: click.Context, file: Path, dataset: str | None, allow_nonfinite: bool, json_: bool) -> None:
    """Report on FILE (a pickle or an HDF5 store) and every problem in it.

    Per split: samples, shapes, dims, per-modality labels, label range, lengths
    and the non-finite cells that loading sets to 0. Exits 1 when the file
    cannot be used, which includes a modality with too many non-finite cells.
    """
    from snn_msa.data.check import check_file, format_report

    report = check_file(file, dataset, allow_nonfinite=allow_nonfinite)
    click.echo(json.dumps(report, indent=2) if json_ else format_report(report))
    if not report["ok"]:
        ctx.exit(1)


@data.command("convert")
@click.argument("src", metavar="IN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path))
def convert(src: Path, dst: Path) -> None:
    """Convert IN.pkl to an HDF5 store OUT.h5, or an HDF5 store back to a pickle.

    The direction follows OUT's extension (.h5/.hdf5 or .pkl/.pickle). OUT is
    written to a temporary file and moved into place, so a failure leaves an
    existing OUT untouched. Converting back gives the same keys and arrays.
    """
    from snn_msa.data import DataError
    from snn_msa.data.files import detect_format, format_from_suffix, same_file
    from snn_msa.data.hdf5_store import convert_hdf5_to_pickle, convert_pickle_to_hdf5

    if dst.exists() and same_file(src, dst):
        raise click.ClickException(f"OUT is the same file as IN ({src}); give another output name.")
    want = format_from_suffix(dst)
    if want is None:
        raise click.ClickException(f"cannot tell the output format from {dst.name!r}: name it .h5 (HDF5 store) or .pkl (pickle).")
    try:
        have = detect_format(src)
        if have == want:
            raise click.ClickException(f"{src} is already {'an HDF5 store' if have == 'hdf5' else 'a pickle'}; nothing to convert.")
        (convert_pickle_to_hdf5 if want == "hdf5" else convert_hdf5_to_pickle)(src, dst)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    size = dst.stat().st_size / 1e6
    click.echo(f"wrote {dst} ({'HDF5 store' if want == 'hdf5' else 'pickle'}, {size:.1f} MB) from {src}")


@data.command("standardize")
@click.argument("src", metavar="IN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("dst", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stats", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Apply the statistics of an earlier run (its OUT.stats.json) instead of IN's train split.")
@click.option("--dataset", type=DATASET_CHOICE, default=None,
              help="Profile of IN; inferred from the feature dims when left out.")
def standardize(src: Path, dst: Path, stats: Path | None, dataset: str | None) -> None:
    """Write IN with every feature channel z-scored by the train split's statistics to OUT (.pkl or .h5).

    Each channel's mean and std come from its finite cells at the train split's
    valid positions; padding stays 0. Use it when channels differ in scale by
    orders of magnitude (docs/data.md). The statistics go to OUT.stats.json;
    give them with --stats to transform files you predict on the same way.

    \b
    Examples:
      snn-msa data standardize ~/data/MOSEI/unaligned_50.pkl mosei_z.pkl
      snn-msa data standardize new.pkl new_z.pkl --stats mosei_z.pkl.stats.json
    """
    from snn_msa.atomic import WriteError
    from snn_msa.data import DataError
    from snn_msa.data.files import same_file
    from snn_msa.data.standardize import standardize_file

    if dst.exists() and same_file(src, dst):
        raise click.ClickException(f"OUT is the same file as IN ({src}); give another output name.")
    try:
        record = standardize_file(src, dst, stats=stats, profile=dataset)
    except (DataError, WriteError) as err:
        raise click.ClickException(str(err)) from None
    spread = {m: float(np.log10(max(record[m]["std"]) / min(record[m]["std"]))) for m in ("text", "audio", "vision")}
    how = f"the statistics of {stats}" if stats else f"the train split's statistics ({dst}.stats.json)"
    click.echo(f"wrote {dst} from {src}, z-scored with {how}; channel std spread before (decades): "
               + ", ".join(f"{m} {v:.1f}" for m, v in spread.items()))


@data.command("synth")
@click.option("--like", "like", type=DATASET_CHOICE, required=True, help="Dataset whose lengths and dims to copy.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write: .pkl (MMSA pickle) or .h5 (HDF5 store).")
@click.option("--n", "sizes", default="192,48,48", show_default=True, metavar="TRAIN,VALID,TEST",
              help="Samples per split.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same file.")
@click.option("--aligned", is_flag=True, help="Pad every modality to the text length, no audio/vision lengths.")
def synth(like: str, out: Path, sizes: str, seed: int, aligned: bool) -> None:
    """Write synthetic data in the MMSA format shaped like a real data set.

    The label is planted so that it needs all three modalities and their
    timing (see docs/data.md). MMSA's own loader reads the pickle.
    """
    from snn_msa.data import DataError
    from snn_msa.data.files import format_from_suffix
    from snn_msa.data.hdf5_store import write_store
    from snn_msa.data.synthetic import make_synthetic, write_pickle
    from snn_msa.profiles import get_profile

    counts = _sizes(sizes)
    kind = format_from_suffix(out)
    if kind is None:
        raise click.ClickException(f"cannot tell the output format from {out.name!r}: name it .pkl (MMSA pickle) or .h5 (HDF5 store).")
    profile = get_profile(like)
    try:
        data = make_synthetic(profile.name, counts, seed, aligned=aligned)
        (write_store if kind == "hdf5" else write_pickle)(data, out)
    except DataError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"wrote {out}: SYNTHETIC data shaped like {profile.title} ({'aligned' if aligned else 'unaligned'}; "
        f"train/valid/test {'/'.join(map(str, counts))}, seed {seed}, {out.stat().st_size / 1e6:.1f} MB). "
        f"It is not {profile.title}: use it to try the tools, not to report results."
    )
