from pathlib import Path

from solaris_batch.storage import FsRoot, LocalRoot, Root
from solaris_batch.storage.uri import join, local_path, scheme, to_hadoop


def test_uris_keep_their_scheme_and_map_to_hadoop():
    assert join("s3a://bucket/logs", "requests", "dt=2026-11-20") == "s3a://bucket/logs/requests/dt=2026-11-20"
    assert join(Path("/data/logs"), "requests") == Path("/data/logs/requests")
    assert to_hadoop("s3://bucket/logs") == "s3a://bucket/logs"
    assert to_hadoop("gs://b/x") == "gs://b/x" and to_hadoop("hdfs://nn:8020/x") == "hdfs://nn:8020/x"
    assert to_hadoop("/data/logs") == "file:///data/logs" and to_hadoop("file:///data/logs") == "file:///data/logs"
    assert to_hadoop("/l/requests/dt=2026-11-20") == "file:///l/requests/dt=2026-11-20"  # no %3D
    assert scheme("S3://b") == "s3" and scheme("/x") == ""
    assert local_path("file:///tmp/x") == Path("/tmp/x") and local_path("s3://b/x") is None


def test_root_open_picks_the_backend(tmp_path):
    assert isinstance(Root.open(tmp_path), LocalRoot) and isinstance(Root.open(f"file://{tmp_path}"), LocalRoot)
    r = Root.open("mock:///warehouse")  # any pyarrow filesystem URI
    assert isinstance(r, FsRoot)
