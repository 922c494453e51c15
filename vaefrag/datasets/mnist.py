"""MNIST and Fashion-MNIST from their idx files, as torchvision saves them.

``DIR`` may be the torchvision root (``DIR/MNIST/raw/...``, ``DIR/FashionMNIST/raw/...``), the
dataset's folder or its ``raw`` folder; the files are ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``
with or without ``.gz``. An idx file is a big-endian header (magic ``0x00000803`` for images,
``0x00000801`` for labels, then the sizes) and uint8 data; uncompressed files are memory-mapped,
gzipped ones decompressed in memory (47 MB for the training images). The label is the one factor.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from vaefrag.datasets import Dataset

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
SPLITS = {"train": "train", "test": "t10k"}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


def read_idx(path, magic: int) -> np.ndarray:
    """The uint8 array of an idx file (``.gz`` allowed); raises ValueError naming the file when the
    magic number or the size does not match."""
    path = Path(path)
    ndim = magic & 0xFF
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
            head = raw[:4 + 4 * ndim]
        else:
            with open(path, "rb") as fh:
                head = fh.read(4 + 4 * ndim)
            raw = None
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable idx file ({exc})") from None
    if len(head) < 4 + 4 * ndim:
        raise ValueError(f"{path}: too short for an idx header")
    got = struct.unpack(">I", head[:4])[0]
    if got != magic:
        raise ValueError(f"{path}: wrong idx magic number 0x{got:08x}, expected 0x{magic:08x} "
                         f"({'images' if magic == IMAGES_MAGIC else 'labels'}, uint8, {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])
    count, offset = int(np.prod(dims)), 4 + 4 * ndim
    if raw is not None:
        if len(raw) != offset + count:
            raise ValueError(f"{path}: holds {len(raw) - offset} data bytes, the header says {count} {list(dims)}")
        return np.frombuffer(raw, np.uint8, count, offset).reshape(dims)
    size = path.stat().st_size
    if size != offset + count:
        raise ValueError(f"{path}: holds {size - offset} data bytes, the header says {count} {list(dims)}")
    return np.memmap(path, np.uint8, mode="r", offset=offset, shape=tuple(dims))


def find_idx(data_dir: Path, folder: str, stem: str) -> Path:
    for base in (data_dir / folder / "raw", data_dir / "raw", data_dir):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz] in it, {folder}/raw/ or raw/")


class Mnist(Dataset):
    """MNIST digits from idx files (see module docstring).

    Parameters
    ----------
    data_dir : str
        Directory holding the idx files (torchvision layout or flat).
    split : "train" (60,000) or "test" (10,000).
    """

    name = "mnist"
    dir_param = "data_dir"
    folder = "MNIST"
    label_name = "digit"
    likelihood = "bernoulli"

    def __init__(self, data_dir: str = "", split: str = "train"):
        if not data_dir:
            raise ValueError(f"{self.name}: parameter 'data_dir' (the directory of idx files) is required")
        if split not in SPLITS:
            raise ValueError(f"{self.name}: split must be one of {sorted(SPLITS)}, got {split!r}")
        d = Path(data_dir)
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such directory")
        self.data_dir, self.split = str(data_dir), split
        prefix = SPLITS[split]
        ipath = find_idx(d, self.folder, f"{prefix}-images-idx3-ubyte")
        lpath = find_idx(d, self.folder, f"{prefix}-labels-idx1-ubyte")
        self._images = read_idx(ipath, IMAGES_MAGIC)
        self._labels = np.asarray(read_idx(lpath, LABELS_MAGIC), dtype=np.int64)
        if len(self._labels) != len(self._images):
            raise ValueError(f"{lpath}: holds {len(self._labels)} labels for {len(self._images)} images in {ipath}")
        self.shape = (1,) + tuple(int(s) for s in self._images.shape[1:])
        self.factor_names = [self.label_name]
        self.factor_sizes = [int(self._labels.max(initial=0)) + 1]

    def __len__(self) -> int:
        return int(len(self._images))

    def params(self) -> dict:
        return {"data_dir": self.data_dir, "split": self.split}

    def get(self, indices):
        idx = self._check_indices(indices)
        x = np.asarray(self._images[idx], dtype=np.float32)[:, None] / np.float32(255.0)
        return x, self._labels[idx][:, None]


class FashionMnist(Mnist):
    """Fashion-MNIST from idx files (``DIR/FashionMNIST/raw/...`` or flat); factor ``class``."""

    name = "fashion-mnist"
    folder = "FashionMNIST"
    label_name = "class"
