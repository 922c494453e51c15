"""Dataset registry: the names of :data:`DATASETS` double as CLI choices.

Every dataset gives random access by index (``get(indices) -> (x, factors)``) so that training
samples minibatches without materializing the whole set, and a JSON-able ``params()`` dict that
rebuilds it exactly (``make_dataset(name, **params)``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class Dataset:
    """Base class of the built-in datasets.

    Attributes
    ----------
    name : str
        Registry name.
    shape : tuple of int
        Shape of one input: ``(C, H, W)`` for images or ``(D,)`` for vectors.
    factor_names : list of str
        Names of the ground-truth factors (empty when unknown).
    factor_sizes : list of int
        Number of values of each factor (empty when unknown).
    likelihood : str
        ``"bernoulli"`` (inputs in [0, 1]) or ``"gaussian"``.
    """

    name = ""
    #: the constructor parameter that takes ``--data-file`` / ``--data-dir`` (None: neither)
    file_param: str | None = None
    dir_param: str | None = None
    shape: tuple[int, ...] = ()
    factor_names: list[str] = []
    factor_sizes: list[int] = []
    likelihood = "bernoulli"

    def __len__(self) -> int:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """JSON-able keyword arguments that rebuild this dataset with :func:`make_dataset`."""
        raise NotImplementedError

    def get(self, indices) -> tuple[np.ndarray, np.ndarray | None]:
        """Inputs and factor labels of the given items.

        Parameters
        ----------
        indices : array-like of int, shape [n]

        Returns
        -------
        x : np.ndarray, float32, shape [n, *shape]
        factors : np.ndarray, int64, shape [n, F], or None when the dataset has no factors
        """
        raise NotImplementedError

    def _check_indices(self, indices) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"{self.name}: indices must be a 1-D integer array, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"{self.name}: indices must lie in [0, {len(self)}), got [{idx.min()}, {idx.max()}]")
        return idx.astype(np.int64)

    def describe(self) -> dict[str, Any]:
        """The manifest's ``dataset`` entry: name, params, shape, factor names and sizes."""
        return {
            "name": self.name,
            "params": self.params(),
            "shape": list(self.shape),
            "size": len(self),
            "likelihood": self.likelihood,
            "factor_names": list(self.factor_names),
            "factor_sizes": list(self.factor_sizes),
        }


def _registry() -> dict[str, type]:
    from vaefrag.datasets.digits import DigitsDataset
    from vaefrag.datasets.dsprites import DSpritesFile
    from vaefrag.datasets.images import ImageFolder
    from vaefrag.datasets.mnist import FashionMnist, Mnist
    from vaefrag.datasets.npz import NpzDataset
    from vaefrag.datasets.ring import RingDataset
    from vaefrag.datasets.shapes3d import Shapes3D
    from vaefrag.datasets.sprites import SpritesDataset

    return {"sprites": SpritesDataset, "digits": DigitsDataset, "ring": RingDataset, "npz": NpzDataset,
            "dsprites": DSpritesFile, "shapes3d": Shapes3D, "mnist": Mnist, "fashion-mnist": FashionMnist,
            "images": ImageFolder}


#: registry name -> dataset class (the keys are the CLI choices)
DATASETS: dict[str, type] = _registry()


def make_dataset(name: str, **params) -> Dataset:
    """Build a registered dataset.

    Raises
    ------
    ValueError
        If ``name`` is not a key of :data:`DATASETS` or a parameter is invalid.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown name {name!r}; expected one of {sorted(DATASETS)}")
    try:
        return DATASETS[name](**params)
    except TypeError as exc:
        raise ValueError(f"dataset {name!r}: bad parameters {params}: {exc}") from None


def dataset_params(name: str, data_file=None, data_dir=None) -> dict:
    """Constructor parameters of dataset ``name`` from ``--data-file`` / ``--data-dir``.

    Raises ValueError naming the option when the dataset needs one that is missing, or takes
    neither (a built-in dataset).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset: unknown name {name!r}; expected one of {sorted(DATASETS)}")
    cls = DATASETS[name]
    params = {}
    for opt, value, param in (("--data-file", data_file, cls.file_param), ("--data-dir", data_dir, cls.dir_param)):
        if value:
            if param is None:
                raise ValueError(f"{opt} does not apply to --dataset {name}")
            params[param] = str(Path(value).expanduser().resolve())
    needed = cls.file_param or cls.dir_param
    if needed and needed not in params:
        raise ValueError(f"--dataset {name} needs {'--data-file FILE' if cls.file_param else '--data-dir DIR'}")
    return params


__all__ = ["Dataset", "DATASETS", "make_dataset", "dataset_params"]
