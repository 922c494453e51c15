"""The one on-disk cache layer (diskcache), shared by every analysis stage, `spaces` and the dashboard.

- Entries are bytes (npz + JSON written by the result classes), never pickles: the cache opens
  diskcache with `SafeDisk`, which refuses to store anything but bytes and refuses to load an
  entry stored any other way (a planted pickle is evicted, never unpickled).
- Keys are content hashes (`content_key`) that include the versions of numpy, scikit-learn,
  umap-learn, torch and vaefrag (`library_versions`), so an upgrade never serves stale numbers.
- An entry is written only after its computation finished, so an interrupted run leaves none.
- A damaged entry (truncated, unreadable, wrong format) is evicted and reported as a miss; a
  damaged cache database is moved aside and started afresh. The cache is never fatal: when it
  cannot be written, the result is still returned.
- numba (UMAP) keeps its compiled code under the same directory (`use_numba_cache`), so a fresh
  process does not compile UMAP again.

No torch here: the dashboard reads the cache on its start-up path.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np

from vaefrag.results import pack, unpack

log = logging.getLogger(__name__)

#: environment variable naming the cache directory
CACHE_ENV = "VAEFRAG_CACHE"

#: libraries whose versions are part of every key
KEY_LIBRARIES = ("numpy", "scikit-learn", "umap-learn", "torch", "vaefrag")

T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$VAEFRAG_CACHE`` if set, else ``~/.cache/vaefrag``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaefrag"


@functools.lru_cache(maxsize=1)
def library_versions() -> str:
    """"numpy=2.1.0;scikit-learn=...;..." for `KEY_LIBRARIES` (from the installed metadata; no imports)."""
    from importlib import metadata

    parts = []
    for name in KEY_LIBRARIES:
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=absent")
    return ";".join(parts)


def content_key(arrays: Iterable, params: dict, code: Iterable[bytes | str] = ()) -> str:
    """SHA-256 over arrays (dtype, shape and bytes; None entries skipped), the parameters as sorted
    JSON, code-version strings or bytes, and `library_versions`."""
    h = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    for c in code:
        h.update(c.encode() if isinstance(c, str) else c)
    h.update(library_versions().encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- a Disk that never pickles


class RefusedEntry(ValueError):
    """A cache entry that is not plain bytes (e.g. a pickle): it is refused, not loaded."""


def _safe_disk_class():
    import diskcache
    from diskcache.core import MODE_BINARY, MODE_RAW

    class SafeDisk(diskcache.Disk):
        """diskcache's Disk restricted to str keys and bytes values: nothing is ever pickled or unpickled."""

        def put(self, key):
            if not isinstance(key, str):
                raise RefusedEntry(f"cache key: expected a str, got {type(key).__name__}")
            return super().put(key)

        def get(self, key, raw):
            if not raw:
                raise RefusedEntry("cache key: stored as a pickle; refused")
            return super().get(key, raw)

        def store(self, value, read, key=None):
            if not isinstance(value, bytes) or read:
                raise RefusedEntry(f"cache value: expected bytes, got {type(value).__name__}")
            return super().store(value, read) if key is None else super().store(value, read, key=key)

        def fetch(self, mode, filename, value, read):
            if mode not in (MODE_RAW, MODE_BINARY):
                raise RefusedEntry(f"cache entry: stored in diskcache mode {mode} (not plain bytes); refused")
            out = super().fetch(mode, filename, value, read)
            if not isinstance(out, bytes):
                raise RefusedEntry(f"cache entry: expected bytes, found {type(out).__name__}; refused")
            return out

    return SafeDisk


_SAFE_DISK = None


def _disk():
    global _SAFE_DISK
    if _SAFE_DISK is None:
        _SAFE_DISK = _safe_disk_class()
    return _SAFE_DISK


def _open(namespace: str, cache_dir):
    """The diskcache of ``namespace``; a damaged database is moved aside and replaced by an empty one."""
    import diskcache

    path = Path(cache_dir or default_cache_dir()) / namespace
    try:
        return diskcache.Cache(str(path), disk=_disk())
    except (sqlite3.DatabaseError, OSError) as exc:
        aside = path.with_name(f"{path.name}.damaged-{os.getpid()}-{time.time_ns()}")
        log.warning("cache %s is damaged (%s); moved aside and started afresh", path, exc)
        try:
            path.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
        return diskcache.Cache(str(path), disk=_disk())


def evict(namespace: str, key: str, cache_dir=None) -> None:
    """Remove entry ``key`` (no error when absent)."""
    try:
        with _open(namespace, cache_dir) as cache:
            cache.delete(key)
    except (sqlite3.Error, OSError) as exc:                  # never fatal
        log.warning("cache %s: could not evict %s (%s)", namespace, key[:12], exc)


#: what a damaged entry raises while being read or decoded
_DAMAGED = (RefusedEntry, ValueError, KeyError, OSError, EOFError, TypeError, sqlite3.Error, zipfile.BadZipFile)


def lookup(namespace: str, key: str, decode: Callable[[bytes], T], cache_dir=None) -> T | None:
    """The decoded entry ``key`` of cache ``namespace`` under ``cache_dir``, or None (never computes).

    An entry that cannot be read or decoded (damaged, or not plain bytes) is evicted and reported as None.
    """
    try:
        with _open(namespace, cache_dir) as cache:
            hit = cache.get(key)
        if hit is None:
            return None
        return decode(hit)
    except _DAMAGED as exc:
        log.warning("cache %s: entry %s is damaged or refused (%s); evicted", namespace, key[:12], exc)
        evict(namespace, key, cache_dir)
        return None


def store(namespace: str, key: str, data: bytes, cache_dir=None) -> bool:
    """Write one entry (call only with a finished result). False when the cache could not be written."""
    try:
        with _open(namespace, cache_dir) as cache:
            cache.set(key, data)
        return True
    except (sqlite3.Error, OSError) as exc:                  # a full disk or a read-only cache: not fatal
        log.warning("cache %s: could not write %s (%s)", namespace, key[:12], exc)
        return False


def cached(namespace: str, key: str, compute: Callable[[], T], *, encode: Callable[[T], bytes],
           decode: Callable[[bytes], T], cache_dir=None, use_cache: bool = True) -> tuple[T, bool]:
    """(result, from_cache): the cached entry, else ``compute()`` stored after it returns.

    ``use_cache=False`` neither reads nor writes.
    """
    if use_cache:
        hit = lookup(namespace, key, decode, cache_dir)
        if hit is not None:
            return hit, True
    out = compute()
    if use_cache:
        store(namespace, key, encode(out), cache_dir)
    return out, False


def cached_arrays(namespace: str, key: str, compute: Callable[[], tuple[dict, dict]], *, cache_dir=None,
                  use_cache: bool = True) -> tuple[dict, dict, bool]:
    """`cached` for a (arrays, meta) pair stored with `pack`: (arrays, meta, from_cache)."""
    (arrays, meta), hit = cached(namespace, key, compute, encode=lambda am: pack(*am), decode=unpack,
                                 cache_dir=cache_dir, use_cache=use_cache)
    return arrays, meta, hit


# --------------------------------------------------------------------------- numba's compiled code


def numba_cache_dir() -> Path:
    """Where numba keeps compiled UMAP code: ``<cache dir>/numba``."""
    return default_cache_dir() / "numba"


def use_numba_cache() -> None:
    """Point numba's on-disk cache (``NUMBA_CACHE_DIR``) at `numba_cache_dir` unless the user chose one,
    and make numba cache the functions UMAP compiles (umap-learn compiles most of them without
    ``cache=True``), so only the first process on a machine pays the compilation.

    Call before umap is imported; it is a no-op afterwards for modules already compiled.
    """
    if "NUMBA_CACHE_DIR" not in os.environ:
        target = numba_cache_dir()
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError:
            return
        os.environ["NUMBA_CACHE_DIR"] = str(target)
        import sys

        if "numba" in sys.modules:            # numba read its configuration already: update it
            import numba

            numba.config.CACHE_DIR = str(target)


__all__ = ["CACHE_ENV", "KEY_LIBRARIES", "default_cache_dir", "library_versions", "content_key", "pack", "unpack",
           "lookup", "store", "evict", "cached", "cached_arrays", "RefusedEntry", "numba_cache_dir",
           "use_numba_cache"]
