"""DeepMind's dSprites file (``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``), read lazily.

The file holds ``imgs`` uint8 [737280, 64, 64] (values 0 / 1), ``latents_classes`` int [N, 6],
``latents_values`` float [N, 6] and ``metadata``, a pickled dict whose ``latents_names`` name the
six factors. ``imgs`` and ``latents_classes`` are memory-mapped (`arrayfile.open_npz_array`: in
place when stored, via a one-time chunked decompression to the cache when deflated, as in the
published file), so the images are never read whole. The factor names come from ``metadata``
*without unpickling it*: its opcodes are scanned (`pickletools.genops`, which never executes
anything) for the strings that follow ``latents_names``. Factors with one value in the file (dSprites'
``color``) are left out: they carry no information.
"""
from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

import numpy as np

from vaefrag.datasets import Dataset
from vaefrag.datasets.arrayfile import npz_keys, open_npz_array

#: dSprites' factor names, used when the file's metadata does not name them
DEFAULT_NAMES = ["color", "shape", "scale", "orientation", "posX", "posY"]
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def names_from_metadata(raw: bytes, count: int) -> list[str] | None:
    """The ``count`` strings after ``'latents_names'`` in a pickle's opcode stream (never executed).

    Strings pickled once and referenced again (memo PUT / GET, as when ``latents_possible_values``
    has the names as keys) are followed through the memo.
    """
    memo: dict = {}
    seq: list[str] = []
    prev = None
    n_memoized = 0
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(raw)):
            name = op.name
            if name in _STRING_OPS:
                prev = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                seq.append(prev)
                continue
            if name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if prev is not None:
                    memo[arg] = prev
            elif name == "MEMOIZE":
                if prev is not None:
                    memo[n_memoized] = prev
                n_memoized += 1
            elif name in ("GET", "BINGET", "LONG_BINGET") and arg in memo:
                seq.append(memo[arg])
            prev = None
    except Exception:
        return None
    for j, s in enumerate(seq):
        if s == "latents_names":
            names = seq[j + 1:j + 1 + count]
            return names if len(names) == count else None
    return None


def _metadata_bytes(path: Path) -> bytes | None:
    with zipfile.ZipFile(path) as zf:
        if "metadata.npy" not in zf.namelist():
            return None
        raw = zf.read("metadata.npy")
    # skip the npy header: magic (6) + version (2) + header length (2 or 4) + header
    major = raw[6]
    hlen = int.from_bytes(raw[8:10], "little") if major == 1 else int.from_bytes(raw[8:12], "little")
    return raw[(10 if major == 1 else 12) + hlen:]


class DSpritesFile(Dataset):
    """dSprites from DeepMind's npz file (see module docstring).

    Parameters
    ----------
    path : str
        The npz file (keys ``imgs``, ``latents_classes``, optional ``metadata``).
    cache_dir : str or None
        Where a deflated ``imgs`` is decompressed once (default ``$VAEFRAG_CACHE/datasets``).
    """

    name = "dsprites"
    file_param = "path"
    likelihood = "bernoulli"

    def __init__(self, path: str = "", cache_dir: str | None = None):
        if not path:
            raise ValueError("dsprites: parameter 'path' (the dSprites npz file) is required")
        self.path, self.cache_dir = str(path), cache_dir
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file")
        keys = npz_keys(p)
        for key in ("imgs", "latents_classes"):
            if key not in keys:
                raise ValueError(f"{p}: missing key {key!r} (has {sorted(keys)}); not a dSprites file")
        self._imgs = open_npz_array(p, "imgs", cache_dir)
        classes = open_npz_array(p, "latents_classes", cache_dir)
        if self._imgs.ndim != 3 or classes.ndim != 2 or len(classes) != len(self._imgs):
            raise ValueError(f"{p}: expected 'imgs' [N, H, W] and 'latents_classes' [N, F], got "
                             f"{list(self._imgs.shape)} and {list(classes.shape)}")
        if classes.dtype.kind not in "iu":
            raise ValueError(f"{p}: field 'latents_classes' must be integer, got {classes.dtype}")
        meta = _metadata_bytes(p)
        names = names_from_metadata(meta, classes.shape[1]) if meta else None
        if names is None:
            names = DEFAULT_NAMES if classes.shape[1] == len(DEFAULT_NAMES) else \
                [f"factor{i}" for i in range(classes.shape[1])]
        sizes = [int(v) + 1 for v in np.asarray(classes.max(axis=0))]
        self._cols = [j for j, s in enumerate(sizes) if s > 1]
        self._classes = classes
        self.factor_names = [names[j] for j in self._cols]
        self.factor_sizes = [sizes[j] for j in self._cols]
        self.shape = (1,) + tuple(self._imgs.shape[1:])
        first = np.asarray(self._imgs[: min(256, len(self._imgs))])
        self._scale = 1.0 if int(first.max(initial=0)) <= 1 else 1.0 / 255.0   # dSprites stores 0 / 1

    def __len__(self) -> int:
        return int(len(self._imgs))

    def params(self) -> dict:
        return {"path": self.path} if self.cache_dir is None else {"path": self.path, "cache_dir": self.cache_dir}

    def get(self, indices):
        idx = self._check_indices(indices)
        order = np.argsort(idx, kind="stable")
        x = np.empty((len(idx),) + self.shape, np.float32)
        x[order, 0] = self._imgs[idx[order]]
        x *= self._scale
        return x, np.asarray(self._classes[idx][:, self._cols], dtype=np.int64)
