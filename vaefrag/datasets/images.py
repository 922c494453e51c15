"""A folder of images (PNG, JPEG, ...), read one file at a time, with an optional labels CSV.

Files are found recursively and sorted by their path relative to the folder; all must have the
size and mode of the first (greyscale gives one channel, anything else RGB). The labels CSV has a
``file`` column (the relative path) and one column per factor; integer columns are kept, other
values become indices into their sorted distinct values. Images without a row are refused.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from vaefrag.datasets import Dataset

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def read_labels(path: Path, files: list[str]) -> tuple[np.ndarray, list[str]]:
    """Factor indices [len(files), F] and names from the labels CSV (see module docstring)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows or "file" not in rows[0]:
        raise ValueError(f"{path}: expected a header with a 'file' column and one column per factor")
    names = [c for c in rows[0] if c != "file"]
    if not names:
        raise ValueError(f"{path}: no factor columns besides 'file'")
    by_file = {r["file"].strip(): r for r in rows}
    missing = [f for f in files if f not in by_file]
    if missing:
        raise ValueError(f"{path}: no row for {len(missing)} image(s), e.g. {missing[0]!r}")
    out = np.empty((len(files), len(names)), np.int64)
    for j, name in enumerate(names):
        col = [by_file[f][name].strip() for f in files]
        try:
            vals = np.asarray([int(v) for v in col], dtype=np.int64)
            if (vals < 0).any():
                raise ValueError
        except ValueError:
            levels = sorted(set(col))
            vals = np.searchsorted(np.asarray(levels), np.asarray(col)).astype(np.int64)
        out[:, j] = vals
    return out, names


class ImageFolder(Dataset):
    """Images of a folder (see module docstring).

    Parameters
    ----------
    data_dir : str
        The folder.
    labels : str or None
        CSV of factor labels (default ``DIR/labels.csv`` when it exists).
    """

    name = "images"
    dir_param = "data_dir"
    likelihood = "bernoulli"

    def __init__(self, data_dir: str = "", labels: str | None = None):
        from PIL import Image

        if not data_dir:
            raise ValueError("images: parameter 'data_dir' (the folder of images) is required")
        root = Path(data_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such directory")
        self.data_dir, self.labels = str(data_dir), labels
        self.files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                            if p.suffix.lower() in SUFFIXES and p.is_file())
        if len(self.files) < 2:
            raise ValueError(f"{root}: holds {len(self.files)} images ({', '.join(sorted(SUFFIXES))}); need at least 2")
        first = self._open(0)
        self.mode = "L" if first.mode in ("L", "1", "I;16", "I", "F") else "RGB"
        self.size = first.size
        w, h = first.size
        self.shape = (1 if self.mode == "L" else 3, h, w)
        lpath = Path(labels) if labels else (root / "labels.csv")
        if labels and not lpath.is_file():
            raise FileNotFoundError(f"{lpath}: no such labels file")
        self._factors, self.factor_names = (read_labels(lpath, self.files) if lpath.is_file() else (None, []))
        self.factor_sizes = [] if self._factors is None else [int(v) + 1 for v in self._factors.max(0)]
        del Image

    def _open(self, i: int):
        from PIL import Image, UnidentifiedImageError

        path = Path(self.data_dir) / self.files[i]
        try:
            img = Image.open(path)
            img.load()
        except (OSError, UnidentifiedImageError) as exc:
            raise ValueError(f"{path}: not a readable image ({exc})") from None
        return img

    def __len__(self) -> int:
        return len(self.files)

    def params(self) -> dict:
        return {"data_dir": self.data_dir} if self.labels is None else {"data_dir": self.data_dir, "labels": self.labels}

    def get(self, indices):
        idx = self._check_indices(indices)
        x = np.empty((len(idx),) + self.shape, np.float32)
        for r, i in enumerate(idx):
            img = self._open(int(i))
            if img.size != self.size:
                raise ValueError(f"{Path(self.data_dir) / self.files[i]}: size {img.size} differs from the first "
                                 f"image's {self.size}; resize the folder's images to one size")
            a = np.asarray(img.convert(self.mode), dtype=np.float32) / 255.0
            x[r] = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
        return x, (None if self._factors is None else self._factors[idx])
