"""Roots: one small interface over where the project keeps files, one module per backend.

A root is a URI: a plain path or ``file://`` (``LocalRoot``: fsync and atomic rename), or any
other pyarrow filesystem URI such as ``s3://``, ``gs://``, ``hdfs://`` (``FsRoot``: no rename, so
files are written in place and a final pointer or marker write is the commit). Paths inside a
root are relative ``a/b/c`` strings. Credentials and endpoints come from the environment pyarrow
reads (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...), never from our settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa

from solaris_batch.errors import ConfigError, ValidationFailed

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
        """The root for ``uri``: ``LocalRoot`` for paths and ``file://``, else ``FsRoot``."""
        if isinstance(uri, Root):
            return uri
        from solaris_batch.storage.uri import local_path

        local = local_path(uri)
        if local is not None:
            from solaris_batch.storage.local import LocalRoot

            return LocalRoot(local)
        from solaris_batch.storage.objectstore import FsRoot

        return FsRoot.from_uri(str(uri))

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
    def is_dir(self, rel: str) -> bool: ...
    def listdir(self, rel: str) -> list[str]: ...

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Durably replace ``rel``; readers see the old or the new content, never a mix."""

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def put_file(self, local: Path, rel: str) -> None: ...

    def put_tree(self, local: Path, rel: str = "", last: tuple[str, ...] = ()) -> None:
        """Make ``rel`` hold exactly the files of the local folder ``local``. Local roots swap the
        folder whole; object stores upload every file (those named in ``last``, the commit markers
        such as ``_SUCCESS``, after the others) and then delete objects the new tree lacks."""

    def uri(self, rel: str = "") -> str:
        """``rel`` as a URI (a plain path for local roots), for messages and for other readers."""

    def arrow(self, rel: str = "") -> tuple:
        """``(pyarrow filesystem, path)`` of ``rel``, for pyarrow's dataset and Parquet readers."""
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


