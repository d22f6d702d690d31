"""Atomic file and folder writes: a process killed mid-write leaves the previous good copy."""

import json
import os
import shutil
import tempfile
from pathlib import Path


def ensure_free_space(folder, needed_bytes, what):
    """Raises OSError, naming `folder`, when it has less than `needed_bytes` free: a full disk is
    reported before a write, not as the failure of a library halfway through one."""
    existing = Path(folder).absolute()
    while not existing.exists():  # the folder may be about to be created
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise OSError(
            f"{what}: {folder} has {free / 2**20:.1f} MiB free, "
            f"{needed_bytes / 2**20:.1f} MiB needed (disk full?)"
        )


def atomic_write_bytes(path, data):
    """Writes bytes to a temporary file beside `path`, fsyncs it, then renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_free_space(path.parent, len(data) + 2**16, f"writing {path.name}")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def replace_dir(tmp_dir, final_dir):
    """Moves a fully written folder into place, keeping the old one until the new one is there."""
    tmp_dir, final_dir = Path(tmp_dir), Path(final_dir)
    old = recover_dir(final_dir)
    if old.exists():
        shutil.rmtree(old)
    if final_dir.exists():
        os.replace(final_dir, old)
    os.replace(tmp_dir, final_dir)
    if old.exists():
        shutil.rmtree(old)


def parked_copy(final_dir):
    """Where `replace_dir` parks the previous copy of `final_dir` while it replaces it."""
    final_dir = Path(final_dir)
    return final_dir.with_name(f".{final_dir.name}.old")


def recover_dir(final_dir):
    """Puts back the previous copy of `final_dir` if a process was killed between the two renames
    of `replace_dir`; returns the path where that copy is parked during a replacement."""
    old = parked_copy(final_dir)
    if old.exists() and not Path(final_dir).exists():
        os.replace(old, final_dir)
    return old


def writable_dir(path, setting):
    """Creates `path` if needed and checks it can be written; errors name the setting."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OSError(f"{setting}={path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(f"{setting}={path} cannot be written: {e.strerror}") from None
    return path
