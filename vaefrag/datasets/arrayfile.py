"""Random access to one array inside an ``.npz`` without reading it whole.

An npz is a zip of ``.npy`` files. A member that is *stored* (``np.savez``) is memory-mapped in
place: its data start is the zip member's offset plus its local header plus the npy header. A
*deflated* member (``np.savez_compressed``, DeepMind's dSprites file) cannot be mapped, so it is
decompressed once, in chunks, to a ``.npy`` file in a cache directory (keyed by the source's path,
size and modification time) and that file is mapped. Object arrays (pickles) are refused.
"""
from __future__ import annotations

import hashlib
import logging
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

_CHUNK = 1 << 22
log = logging.getLogger("vaefrag.datasets")


def _npy_header(fh):
    """(shape, fortran_order, dtype) of the npy stream at ``fh`` (positioned at its start)."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _member(zf: zipfile.ZipFile, path: Path, key: str) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(f"{key}.npy")
    except KeyError:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        raise ValueError(f"{path}: missing key {key!r} (has {sorted(names)})") from None


def npz_keys(path) -> list[str]:
    """Names of the arrays in an npz."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None


def npz_member_info(path, key: str):
    """(shape, dtype, compressed) of ``key`` in the npz at ``path``, reading only headers."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            info = _member(zf, path, key)
            with zf.open(info) as fh:
                shape, fortran, dtype = _npy_header(fh)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable npz file ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: key {key!r} is not a readable npy array ({exc})") from None
    if dtype.hasobject:
        raise ValueError(f"{path}: key {key!r} holds Python objects (pickle), which vaefrag does not load")
    return tuple(shape), dtype, info.compress_type != zipfile.ZIP_STORED


def _cache_dir(cache_dir) -> Path:
    if cache_dir:
        return Path(cache_dir)
    from vaefrag.cache import default_cache_dir

    return Path(default_cache_dir()) / "datasets"


def open_npz_array(path, key: str, cache_dir=None) -> np.ndarray:
    """A read-only memory map of array ``key`` of the npz at ``path`` (see module docstring).

    Raises ValueError naming the file when it is not a readable npz, the key is missing, the array
    needs pickle or the member is truncated.
    """
    path = Path(path)
    shape, dtype, compressed = npz_member_info(path, key)
    count = int(np.prod(shape)) if shape else 1
    nbytes = count * dtype.itemsize
    with zipfile.ZipFile(path) as zf:
        info = _member(zf, path, key)
        with zf.open(info) as fh:
            _, fortran, _ = _npy_header(fh)
            header_len = fh.tell()
        if not compressed:
            with open(path, "rb") as raw:
                raw.seek(info.header_offset)
                local = raw.read(30)
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    raise ValueError(f"{path}: zip member {info.filename} has a bad local header")
                name_len, extra_len = struct.unpack("<HH", local[26:30])
            offset = info.header_offset + 30 + name_len + extra_len + header_len
            if offset + nbytes > path.stat().st_size or info.file_size < header_len + nbytes:
                raise ValueError(f"{path}: key {key!r} is truncated (expected {nbytes} bytes of data)")
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                             order="F" if fortran else "C")
        st = path.stat()
        tag = hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{key}".encode()).hexdigest()[:24]
        out = _cache_dir(cache_dir) / f"{path.stem}-{key}-{tag}.npy"
        if not out.is_file():
            log.info("%s: decompressing %r (%.1f GB) once to %s", path, key, nbytes / 1e9, out)
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
            try:
                mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape, fortran_order=fortran)
                flat = mm.reshape(-1, order="F" if fortran else "C").view(np.uint8)
                done = 0
                with zf.open(info) as fh:
                    fh.read(header_len)
                    while done < nbytes:
                        buf = fh.read(min(_CHUNK, nbytes - done))
                        if not buf:
                            raise ValueError(f"{path}: key {key!r} is truncated ({done} of {nbytes} bytes)")
                        flat[done:done + len(buf)] = np.frombuffer(buf, np.uint8)
                        done += len(buf)
                mm.flush()
                del mm, flat
                os.replace(tmp, out)
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                tmp.unlink(missing_ok=True)
                raise ValueError(f"{path}: key {key!r} cannot be decompressed ({exc})") from None
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    return np.load(out, mmap_mode="r", allow_pickle=False)
