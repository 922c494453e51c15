"""Checks of files before they are read: npz archives (from the zip directory and the .npy headers)
and JSON manifests (size, nesting). Used by `store` for loads and imports, by `vaefrag import` and by
the dashboard's upload, so that no file can make a reader allocate what it declares, unpickle, or
recurse without bound.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class EnsembleError(ValueError):
    """An ensemble on disk (or its input) is invalid; the message names the file and the field."""


#: default limits of `check_archive`: total decompressed bytes, and members of the zip
MAX_ARCHIVE_BYTES, MAX_ARCHIVE_MEMBERS = 4 * 2**30, 64
#: what each known key of an npz may be: dtype kinds and numbers of dimensions
ARCHIVE_FIELDS = {"mu": ("iuf", (2, 3)), "logvar": ("iuf", (2, 3)), "x": ("iufb", (2, 3, 4)),
                  "factors": ("iub", (1, 2)), "factor_names": ("US", (1,))}


def _what_is(path: Path, head: bytes) -> str:
    what = "expected a zip archive written by numpy.savez"
    if head.startswith(b"\x93NUMPY"):
        return f"not a readable npz file: it is a single .npy array (numpy.save); {what}"
    if head.startswith(b"\x80"):
        return f"not a readable npz file: it looks like a pickle (never loaded); {what}"
    if head.startswith(b"PK"):
        return f"not a readable npz file: a damaged or truncated zip archive; {what}"
    if head and all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return f"not a readable npz file: it is a text file; {what}"
    return f"not a readable npz file ({what})"


def check_archive(path, *, max_bytes: int = MAX_ARCHIVE_BYTES, max_members: int = MAX_ARCHIVE_MEMBERS,
                  fields: dict = ARCHIVE_FIELDS) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Check an .npz file from its zip directory and .npy headers, before any array is read.

    Refuses: a path that is a directory or not a zip (naming what it is: .npy, text, pickle),
    more than ``max_members`` members, a decompressed total over ``max_bytes``, members that are not
    .npy arrays, object dtypes (pickle), a declared shape whose size disagrees with the member's
    stored size (a declared-huge array), and known keys (``fields``: mu, logvar, x, factors,
    factor_names) of the wrong kind or number of dimensions.

    Returns {key: (shape, dtype)}. Raises FileNotFoundError or EnsembleError naming the file and key.
    """
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise EnsembleError(f"{path}: is a directory, expected an .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
        if not zipfile.is_zipfile(path):
            raise EnsembleError(f"{path}: {_what_is(path, head)}")
        out = {}
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > max_members:
                raise EnsembleError(f"{path}: {len(infos)} arrays in the archive, at most {max_members} expected")
            total = sum(i.file_size for i in infos)
            if total > max_bytes:
                raise EnsembleError(f"{path}: the arrays take {total / 2**20:.0f} MiB decompressed, more than the "
                                    f"limit of {max_bytes / 2**20:.0f} MiB")
            for info in infos:
                key = info.filename[:-4] if info.filename.endswith(".npy") else None
                if key is None:
                    raise EnsembleError(f"{path}: member {info.filename[:80]!r} is not an .npy array")
                with zf.open(info) as member:
                    try:
                        version = np.lib.format.read_magic(member)
                        read = {(1, 0): np.lib.format.read_array_header_1_0,
                                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                        if read is None:
                            raise ValueError(f"unsupported .npy format version {version}")
                        shape, fortran, dtype = read(member, max_header_size=10000)
                    except (ValueError, SyntaxError, TypeError) as exc:
                        raise EnsembleError(f"{path}: key {key!r} has no valid .npy header ({exc})") from None
                    header = member.tell()
                if dtype.hasobject:
                    raise EnsembleError(f"{path}: key {key!r} holds Python objects (dtype {dtype}); pickled data "
                                        "is never loaded")
                count = 1
                for d in shape:
                    count *= int(d)
                if count * dtype.itemsize != info.file_size - header:
                    raise EnsembleError(f"{path}: key {key!r} declares shape {shape} of {dtype} "
                                        f"({count * dtype.itemsize} bytes) but stores {info.file_size - header}")
                if key in fields:
                    kinds, ndims = fields[key]
                    if dtype.kind not in kinds:
                        raise EnsembleError(f"{path}: key {key!r} must be of kind {kinds!r} "
                                            f"(numeric/str as documented), got dtype {dtype}")
                    if len(shape) not in ndims:
                        raise EnsembleError(f"{path}: key {key!r} must have {' or '.join(map(str, ndims))} "
                                            f"dimensions, got shape {shape}")
                out[key] = (tuple(int(d) for d in shape), dtype)
        return out
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise EnsembleError(f"{path}: not a readable npz file ({exc})") from None
    except OSError as exc:
        raise EnsembleError(f"{path}: cannot be read ({exc.strerror or exc})") from None


#: largest manifest read (bytes)
MAX_MANIFEST_BYTES = 16 * 2**20


def read_manifest(mpath) -> dict | list | str | int | float | None:
    """The JSON value of a manifest file; EnsembleError for a file over `MAX_MANIFEST_BYTES`, invalid
    UTF-8 / JSON, or nesting too deep to parse."""
    mpath = Path(mpath)
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise EnsembleError(f"{mpath}: larger than {MAX_MANIFEST_BYTES // 2**20} MiB; not a manifest")
    try:
        return json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EnsembleError(f"{mpath}: not valid JSON ({exc})") from None
    except RecursionError:
        raise EnsembleError(f"{mpath}: JSON nested too deeply to be a manifest") from None


