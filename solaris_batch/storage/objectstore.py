"""Object-store roots (``s3://``, ``gs://``, ``hdfs://``, ``abfs://``, ...) over pyarrow filesystems."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs

from solaris_batch.errors import ConfigError
from solaris_batch.storage.base import Root


class FsRoot(Root):
    """Any pyarrow filesystem; object stores have no rename, so the pointer write commits."""

    def __init__(self, fs: pafs.FileSystem, base: str):
        self.fs, self.base = fs, base.rstrip("/")

    @classmethod
    def from_uri(cls, uri: str) -> FsRoot:
        """``s3a://``/``s3n://`` (Hadoop's spellings, as Spark users write them) mean ``s3://`` here."""
        scheme, sep, rest = uri.partition("://")
        if scheme.lower() in ("s3a", "s3n"):
            uri = f"s3://{rest}"
        try:
            fs, base = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
            raise ConfigError(f"cannot open root {uri}: {e}: check the scheme and the credentials/endpoint"
                              " environment pyarrow reads (e.g. AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID)") from None
        return cls(fs, base)

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

    def write_bytes(self, rel, data):
        with self.fs.open_output_stream(self._p(rel)) as f:  # single-object PUT: atomic on S3/GCS
            f.write(data)

    def is_dir(self, rel):
        return self.fs.get_file_info(self._p(rel)).type == pafs.FileType.Directory

    def put_tree(self, local, rel="", last=()):
        local = Path(local)
        files = sorted((p for p in local.rglob("*") if p.is_file()), key=lambda p: (p.name in last, str(p)))
        for p in files:
            dst = self._p("/".join(x for x in (rel, p.relative_to(local).as_posix()) if x))
            self.fs.create_dir(dst.rsplit("/", 1)[0], recursive=True)
            pafs.copy_files(str(p), dst, destination_filesystem=self.fs)
        keep = {self._p("/".join(x for x in (rel, p.relative_to(local).as_posix()) if x)) for p in files}
        base = self._p(rel) if rel else self.base
        stale = [i.path for i in self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
                 if i.type == pafs.FileType.File and i.path not in keep]
        for path in stale:
            self.fs.delete_file(path)

    def uri(self, rel=""):
        return f"{self.fs.type_name}://{self._p(rel) if rel else self.base}"

    def arrow(self, rel=""):
        return self.fs, (self._p(rel) if rel else self.base)

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
