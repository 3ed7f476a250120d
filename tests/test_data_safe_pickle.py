"""The restricted unpickler: numpy arrays load, anything that could run code is refused first."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from snn_msa.data import DataError, load_dataset
from snn_msa.data.safe_pickle import restricted_load, restricted_loads
from snn_msa.data.synthetic import make_synthetic, write_pickle


class _WritesMarker:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalsCode:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def _mmsa_with(payload) -> dict:
    data = make_synthetic("mosi", (2, 1, 1), seq_lens=(8, 4, 4))
    data["train"]["id"] = payload
    return data


def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_mmsa_with(_WritesMarker(str(marker))), protocol=4))
    with pytest.raises(DataError) as err:
        load_dataset(path)
    message = str(err.value)
    assert str(path) in message and "system" in message and "refused" in message
    assert not marker.exists()
    # The same file does run code under plain pickle: the test really tests something.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("payload, name", [
    (_EvalsCode(), "builtins.eval"),
    (print, "builtins.print"),
    (pytest.importorskip("torch").nn.Linear(2, 2), "torch"),
])
def test_other_globals_are_refused_with_their_name(tmp_path, payload, name):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"train": payload}))
    with pytest.raises(DataError, match=name.replace(".", r"\.")) as err:
        restricted_load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_arrays_scalars_and_containers_load(protocol):
    value = {
        "f": np.arange(12, dtype=np.float32).reshape(3, 4),
        "i": np.arange(3, dtype=np.int64),
        "u": np.array(["ab", "c"]),
        "o": np.array(["x", "yz"], dtype=object),
        "scalar": np.float32(1.5),
        "list": [1, 2.5, "s", None, True, (1, 2)],
        "complex": 1 + 2j,
        "bytes": b"\x00\xff",
    }
    back = restricted_loads(pickle.dumps(value, protocol=protocol))
    for key in ("f", "i", "u", "o"):
        assert back[key].dtype == value[key].dtype and np.array_equal(back[key], value[key])
    assert back["scalar"] == np.float32(1.5) and back["list"] == value["list"]
    assert back["complex"] == 1 + 2j and back["bytes"] == b"\x00\xff"


def test_numpy_1x_pickles_load():
    # numpy 1.x names its modules numpy.core.*; protocol 2 spells globals out as text.
    blob = pickle.dumps({"a": np.arange(4.0), "s": np.float64(2.0)}, protocol=2)
    old = blob.replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray" in old
    back = restricted_loads(old)
    assert np.array_equal(back["a"], np.arange(4.0)) and back["s"] == 2.0


def test_codecs_encode_is_limited_to_latin1():
    blob = pickle.dumps(b"abc", protocol=2)
    assert restricted_loads(blob) == b"abc"
    with pytest.raises(DataError, match="refused to call _codecs.encode with the codec 'utf_16'"):
        restricted_loads(blob.replace(b"latin1", b"utf_16"))


def test_synthetic_pickle_round_trips_through_the_safe_loader(tmp_path):
    data = make_synthetic("sims", (2, 1, 1), seq_lens=(8, 6, 5))
    write_pickle(data, tmp_path / "s.pkl")
    back = restricted_load(tmp_path / "s.pkl")
    assert np.array_equal(back["train"]["vision"], data["train"]["vision"])
    assert back["test"]["audio_lengths"] == data["test"]["audio_lengths"]


def test_truncated_pickle_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.pkl"
    write_pickle(make_synthetic("mosi", (2, 1, 1), seq_lens=(8, 4, 4)), path)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_ordered_dict_splits_load(tmp_path):
    from collections import OrderedDict

    from snn_msa.data import load_dataset

    data = make_synthetic("mosi", (3, 2, 2), seq_lens=(8, 6, 5))
    path = tmp_path / "ordered.pkl"
    path.write_bytes(pickle.dumps(OrderedDict((k, OrderedDict(v)) for k, v in data.items()), protocol=4))
    assert len(load_dataset(path).splits["train"]) == 3


def test_python2_array_pickles_load():
    # A numpy array as Python 2 pickled it: the data is a py2 str (BINSTRING), decoded as latin1.
    raw = np.array([1.0, 2.0, -np.inf]).tobytes()
    blob = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85q\x02U\x01b\x87q\x03Rq\x04"
            b"(K\x01K\x03\x85cnumpy\ndtype\nq\x05U\x02f8K\x00K\x01\x87Rq\x06(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89T"
            + len(raw).to_bytes(4, "little") + raw + b"tb.")
    back = restricted_loads(blob)
    assert back.dtype == np.float64 and back[:2].tolist() == [1.0, 2.0] and np.isneginf(back[2])


# --- the allowlist, pinned whole ------------------------------------------------------------------


def _numpy_core_object(submodule: str, name: str):
    """numpy's own object, found independently of the module under test (numpy 2: _core, numpy 1: core)."""
    import importlib

    try:
        return getattr(importlib.import_module(f"numpy._core.{submodule}"), name)
    except (ImportError, AttributeError):  # numpy 1.x
        return getattr(importlib.import_module(f"numpy.core.{submodule}"), name)


# Every global a feature pickle may name, and what it resolves to. Widening the unpickler (a new
# entry, or a find_class that falls back to importing) must fail a test: this is the whole list.
EXPECTED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "complex"): complex,
    ("__builtin__", "complex"): complex,
    ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    **{(f"{package}.multiarray", "_reconstruct"): _numpy_core_object("multiarray", "_reconstruct")
       for package in ("numpy.core", "numpy._core")},
    **{(f"{package}.multiarray", "scalar"): _numpy_core_object("multiarray", "scalar")
       for package in ("numpy.core", "numpy._core")},
    **{(f"{package}.numeric", "_frombuffer"): _numpy_core_object("numeric", "_frombuffer")
       for package in ("numpy.core", "numpy._core")},
    ("_codecs", "encode"): "latin1 only",  # a wrapper, checked below
}

# Modules whose every public and private name is offered to the unpickler: what it may resolve,
# and the usual routes to running code.
PROBED_MODULES = ("builtins", "numpy", "numpy._core.multiarray", "numpy._core.numeric", "numpy.lib.format",
                  "collections", "_codecs", "codecs", "copyreg", "functools", "operator", "os", "posix",
                  "subprocess", "sys", "io", "pickle", "importlib", "runpy", "shutil", "types", "torch")


def _global_pickle(module: str, name: str) -> bytes:
    """A protocol-0 pickle whose whole program is ``GLOBAL module name``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n."


def _admitted(module: str, name: str):
    try:
        return True, restricted_loads(_global_pickle(module, name))
    except DataError:
        return False, None


def _probe_names() -> set[tuple[str, str]]:
    import importlib

    pairs = set(EXPECTED_GLOBALS)
    for module in PROBED_MODULES:
        names = dir(importlib.import_module(module))
        pairs |= {(module, n) for n in names}
        if module == "builtins":
            pairs |= {("__builtin__", n) for n in names}
        if module.startswith("numpy._core."):
            pairs |= {(module.replace("numpy._core.", "numpy.core."), n) for n in names}
    return {(m, n) for m, n in pairs if n.isidentifier()}


def test_the_allowlist_is_exactly_the_documented_one():
    from snn_msa.data.safe_pickle import ALLOWED_GLOBALS

    assert set(ALLOWED_GLOBALS) == set(EXPECTED_GLOBALS)
    probed = _probe_names()
    admitted = {pair for pair in probed if _admitted(*pair)[0]}
    extra = sorted(admitted - set(EXPECTED_GLOBALS))
    assert admitted == set(EXPECTED_GLOBALS), f"admitted beyond the list ({len(extra)}): {extra[:10]}"
    assert len(probed) > 2000  # the probe really offered the modules' names
    for pair, expected in EXPECTED_GLOBALS.items():
        if pair != ("_codecs", "encode"):
            assert _admitted(*pair)[1] is expected, pair
    encode = _admitted("_codecs", "encode")[1]
    assert encode is not __import__("_codecs").encode and encode("é", "latin1") == b"\xe9"
    with pytest.raises(Exception, match="only 'latin1'"):
        encode("abc", "utf-8")
