"""Snapshot roots: one small interface, a local backend and an object-store backend.

``Root.open(uri)`` gives ``LocalRoot`` for plain paths and ``file://`` URIs (fsync + atomic
rename), and ``FsRoot`` for any other pyarrow filesystem URI (``s3://``, ``gs://``, ``hdfs://``,
...), where there is no atomic rename: files are written in place under a new snapshot folder and
the final pointer write is the commit. Paths inside a root are relative ``a/b/c`` strings.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from solaris_batch.errors import ConfigError, ValidationFailed

log = logging.getLogger(__name__)

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_name(name: str, what: str) -> str:
    """Refuse names that could escape a folder (``..``, slashes, empty, hidden)."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name:
        raise ConfigError(f"unsafe {what} {name!r}: use letters, digits, '.', '_' and '-' only")
    return name


class Root:
    """What publish, rollback, gc and the lookup store need from a snapshot root."""

    atomic_rename: bool = False

    @staticmethod
    def open(uri: str | Path | Root) -> Root:
        if isinstance(uri, Root):
            return uri
        s = str(uri)
        if "://" not in s:
            return LocalRoot(Path(s))
        if s.startswith("file://"):
            return LocalRoot(Path(s[len("file://"):]))
        try:
            fs, base = pafs.FileSystem.from_uri(s)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise ConfigError(f"cannot open snapshot root {s}: {e}") from None
        return FsRoot(fs, base)

    def read_bytes(self, rel: str) -> bytes: ...

    def read_buffer(self, rel: str) -> pa.Buffer:
        """The whole file as an Arrow buffer (memory-mapped where the backend allows)."""
        return pa.py_buffer(self.read_bytes(rel))

    def read_into(self, rel: str, out) -> None:
        """Fill the writable buffer ``out`` with the file's bytes; its size must match exactly."""
        data = self.read_bytes(rel)
        view = memoryview(out).cast("B")
        if len(data) != len(view):
            raise ValidationFailed(f"{self}/{rel} holds {len(data)} bytes, expected {len(view)}: refused")
        view[:] = data
    def read_optional(self, rel: str) -> bytes | None:
        """The file's bytes, or None where there is no such file."""
    def exists(self, rel: str) -> bool: ...
    def listdir(self, rel: str) -> list[str]: ...
    def write_text(self, rel: str, text: str) -> None:
        """Durably replace ``rel``; readers see the old or the new content, never a mix."""
    def put_file(self, local: Path, rel: str) -> None: ...
    def new_dir(self, final_rel: str) -> str:
        """Folder to write a new snapshot into before ``commit_dir``."""
    def commit_dir(self, tmp_rel: str, final_rel: str) -> None: ...
    def delete_dir(self, rel: str) -> None: ...

    @contextmanager
    def lock(self, rel: str) -> Iterator[None]:
        """Hold the exclusive writer lock of folder ``rel`` (one publisher, rollback or gc at a
        time). Object stores offer no lock through pyarrow: there it is a no-op, and writers must
        be serialized outside (e.g. one Airflow pool slot)."""
        yield


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

    @staticmethod
    def _fsync_dir(d: Path) -> None:
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_text(self, rel, text):
        p = self._p(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp-{uuid.uuid4().hex[:8]}")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        self._fsync_dir(p.parent)

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
        self._fsync_dir(self._p(tmp_rel))
        os.replace(self._p(tmp_rel), dst)
        self._fsync_dir(dst.parent)

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


class FsRoot(Root):
    """Any pyarrow filesystem; object stores have no rename, so the pointer write commits."""

    def __init__(self, fs: pafs.FileSystem, base: str):
        self.fs, self.base = fs, base.rstrip("/")

    def __str__(self) -> str:
        return f"{self.fs.type_name}://{self.base}"

    def _p(self, rel):
        return f"{self.base}/{rel}" if self.base else rel

    def read_bytes(self, rel):
        with self.fs.open_input_stream(self._p(rel)) as f:
            return f.read()

    def read_optional(self, rel):
        if self.fs.get_file_info(self._p(rel)).type != pafs.FileType.File:
            return None
        try:
            return self.read_bytes(rel)
        except FileNotFoundError:  # deleted since the check
            return None

    def exists(self, rel):
        return self.fs.get_file_info(self._p(rel)).type != pafs.FileType.NotFound

    def listdir(self, rel):
        infos = self.fs.get_file_info(pafs.FileSelector(self._p(rel), allow_not_found=True))
        return sorted(i.base_name for i in infos)

    def write_text(self, rel, text):
        with self.fs.open_output_stream(self._p(rel)) as f:  # single-object PUT: atomic on S3/GCS
            f.write(text.encode())

    def put_file(self, local, rel):
        self.fs.create_dir(self._p(rel).rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(str(local), self._p(rel), destination_filesystem=self.fs)

    def new_dir(self, final_rel):
        self.fs.create_dir(self._p(final_rel), recursive=True)
        return final_rel  # written in place: invisible until a manifest and the pointer exist

    def commit_dir(self, tmp_rel, final_rel):
        return None

    def delete_dir(self, rel):
        if self.exists(rel):
            self.fs.delete_dir(self._p(rel))
