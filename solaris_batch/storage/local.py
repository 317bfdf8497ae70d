"""Local roots (plain paths and ``file://``): fsync, atomic rename and ``flock``."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from solaris_batch.errors import ValidationFailed
from solaris_batch.storage.atomic import fsync_dir, staged_dir, write_atomic
from solaris_batch.storage.base import Root

log = logging.getLogger(__name__)


class LocalRoot(Root):
    atomic_rename = True

    def __init__(self, base: Path):
        self.base = Path(base)

    def __str__(self) -> str:
        return str(self.base)

    def _p(self, rel: str) -> Path:
        return self.base / rel

    def read_bytes(self, rel):
        return self._p(rel).read_bytes()

    def read_buffer(self, rel):
        """The file read into process memory (not memory-mapped: a mapped file truncated or
        replaced in place while it is read would kill the process with SIGBUS)."""
        with open(self._p(rel), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            buf = pa.allocate_buffer(size, resizable=False)
            view = memoryview(buf).cast("B")
            got = 0
            while got < size:
                n = f.readinto(view[got:])
                if not n:  # the file shrank while being read: the caller's size check refuses it
                    return buf.slice(0, got)
                got += n
        return buf

    def read_into(self, rel, out):
        view = memoryview(out).cast("B")
        with open(self._p(rel), "rb") as f:
            if f.readinto(view) != len(view) or f.read(1):
                raise ValidationFailed(f"{self._p(rel)} does not hold exactly {len(view)} bytes: refused")

    def read_optional(self, rel):
        try:
            return self._p(rel).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def exists(self, rel):
        return self._p(rel).exists()

    def listdir(self, rel):
        p = self._p(rel)
        return sorted(x.name for x in p.iterdir()) if p.is_dir() else []

    def write_bytes(self, rel, data):
        write_atomic(self._p(rel), data)

    def is_dir(self, rel):
        return self._p(rel).is_dir()

    def put_tree(self, local, rel="", last=()):
        dst = self._p(rel) if rel else self.base
        with staged_dir(dst) as tmp:
            shutil.copytree(local, tmp, dirs_exist_ok=True)

    def uri(self, rel=""):
        return str(self._p(rel)) if rel else str(self.base)

    def arrow(self, rel=""):
        return pafs.LocalFileSystem(), str(Path(self.uri(rel)).resolve())

    def put_file(self, local, rel):
        p = self._p(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, p)
        with open(p, "rb") as f:
            os.fsync(f.fileno())

    def new_dir(self, final_rel):
        parent, name = final_rel.rsplit("/", 1)
        tmp = f"{parent}/.tmp-{name}-{uuid.uuid4().hex[:8]}"
        self._p(tmp).mkdir(parents=True)
        return tmp

    def commit_dir(self, tmp_rel, final_rel):
        dst = self._p(final_rel)
        if dst.exists():  # not a complete snapshot (the caller checked): set aside for gc, never deleted here
            os.replace(dst, dst.with_name(f".tmp-{dst.name}-stale-{uuid.uuid4().hex[:8]}"))
        fsync_dir(self._p(tmp_rel))
        os.replace(self._p(tmp_rel), dst)
        fsync_dir(dst.parent)

    def delete_dir(self, rel):
        shutil.rmtree(self._p(rel), ignore_errors=True)

    @contextmanager
    def lock(self, rel):
        """``flock`` on ``rel/.lock``: released by the kernel when the holder dies, so a killed
        publisher never leaves the folder locked."""
        d = self._p(rel)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / ".lock", "a+b") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("waiting for the writer lock on %s (another publish, rollback or gc holds it)", d)
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


