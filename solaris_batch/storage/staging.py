"""Local views of remote folders, for the stages whose engines read and write local files (torch
checkpoints, the inference runner, publish's checksummed reads).

``fetched(uri)`` is a local folder holding the tree at ``uri``; ``staged_output(uri)`` is a local
folder whose files land at ``uri`` when the block succeeds. For local roots both are the folder
itself, so the default deployment copies nothing. For object stores a file is one PUT, which is
atomic: a reader sees a whole file or none, and a killed upload leaves no partial file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from solaris_batch.storage.base import Root
from solaris_batch.storage.uri import local_path


def is_local(uri: str | Path) -> bool:
    return local_path(uri) is not None


@contextmanager
def fetched(uri: str | Path) -> Iterator[Path]:
    """A local folder holding the files under ``uri`` (an empty folder where there are none);
    a downloaded copy is deleted when the block ends."""
    local = local_path(uri)
    if local is not None:
        yield local
        return
    import pyarrow.fs as pafs

    root = Root.open(uri)
    with tempfile.TemporaryDirectory(prefix="solaris-fetch-") as tmp:
        if root.is_dir(""):
            fs, path = root.arrow("")
            pafs.copy_files(path, tmp, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        yield Path(tmp)


def fetch_file(uri: str | Path, rel: str, into: Path) -> Path | None:
    """Copy the file ``uri/rel`` to ``into/rel``; None where there is no such file."""
    data = Root.open(uri).read_optional(rel)
    if data is None:
        return None
    dest = into / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


@contextmanager
def staged_output(uri: str | Path) -> Iterator[tuple[Path, list[str]]]:
    """``(folder, upload)``: write files into ``folder`` and name each finished one (relative
    path) in ``upload``; on success they are put under ``uri`` in that order (a commit marker last).
    Files already under ``uri`` that are not named are left alone, so parallel writers of one
    folder (one inference shard each) do not remove each other's files."""
    local = local_path(uri)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
        yield local, []
        return
    root = Root.open(uri)
    with tempfile.TemporaryDirectory(prefix="solaris-stage-") as tmp:
        names: list[str] = []
        yield Path(tmp), names
        for rel in names:
            root.put_file(Path(tmp) / rel, rel)
