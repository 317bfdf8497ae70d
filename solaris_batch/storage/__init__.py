"""Storage: every root is a URI (see ``uri``); ``Root`` and its backends read and write inside
one; ``atomic`` is the one way to replace a local file or folder."""

from solaris_batch.storage.atomic import (
    atomic_path,
    fsync_dir,
    replace_dir,
    staged_dir,
    write_atomic,
    write_json_atomic,
    write_table_atomic,
)
from solaris_batch.storage.base import SAFE_NAME, Root, safe_name
from solaris_batch.storage.local import LocalRoot
from solaris_batch.storage.objectstore import FsRoot

__all__ = ["atomic_path", "Root", "LocalRoot", "FsRoot", "SAFE_NAME", "safe_name", "fsync_dir", "replace_dir", "staged_dir",
           "write_atomic", "write_json_atomic", "write_table_atomic"]
