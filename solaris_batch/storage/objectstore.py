"""Object-store roots (``s3://``, ``gs://``, ``hdfs://``, ``abfs://``, ...) over pyarrow filesystems."""

from __future__ import annotations

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
