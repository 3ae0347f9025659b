"""Real file-system faults for tests: a small tmpfs to fill (a full disk) or mounted read-only.

Mounting needs root (and a kernel that lets this container mount tmpfs); where it cannot be done
the test is skipped with the reason. Permission bits are no substitute: root ignores them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


@contextmanager
def tmpfs(path: Path, *, size: str = "2m", readonly: bool = False) -> Iterator[Path]:
    """``path`` as a fresh tmpfs of ``size`` (read-only if asked); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a real full or read-only disk) needs root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    mounted = _mount("-t", "tmpfs", "-o", options, "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def remount(path: Path, *, readonly: bool) -> None:
    """Turn a mounted tmpfs read-only or writable again."""
    done = _mount("-o", "remount," + ("ro" if readonly else "rw"), str(path))
    assert done.returncode == 0, done.stderr


def fill(folder: Path, name: str = "filler") -> Path:
    """Write zeros into ``folder`` until the disk refuses; the file to delete to free space."""
    filler = folder / name
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for block in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * block):
                    pass
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler
