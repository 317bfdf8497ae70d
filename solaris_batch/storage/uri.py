"""Root URIs: plain paths and ``file://`` are local; every other scheme is a pyarrow filesystem.

The Spark side reads the same URIs through Hadoop, whose S3 connector is ``s3a://``:
``to_hadoop`` maps our scheme to Hadoop's in this one place.
"""

from __future__ import annotations

from pathlib import Path

HADOOP_SCHEMES = {"s3": "s3a", "gs": "gs", "hdfs": "hdfs", "abfs": "abfs", "abfss": "abfss", "file": "file"}


def scheme(uri: str | Path) -> str:
    """``""`` for a plain path, else the lower-case scheme (``s3``, ``file``, ...)."""
    s = str(uri)
    return s.split("://", 1)[0].lower() if "://" in s else ""


def local_path(uri: str | Path) -> Path | None:
    """The local path a plain path or ``file://`` URI names; None for other schemes."""
    if isinstance(uri, Path):
        return uri
    sch = scheme(uri)
    if sch == "":
        return Path(uri)
    if sch == "file":
        return Path(str(uri)[len("file://"):])
    return None


def join(uri: str | Path, *parts: str) -> str | Path:
    """``uri/part/...`` keeping the type: a ``Path`` stays a ``Path``, a URI stays a string whose
    ``//`` after the scheme is kept (``Path('s3a://b/x')`` would print ``s3a:/b/x``)."""
    if isinstance(uri, Path):
        return uri.joinpath(*parts)
    return "/".join([str(uri).rstrip("/"), *(p.strip("/") for p in parts)])


def to_hadoop(uri: str | Path) -> str:
    """The same location as Spark/Hadoop spells it: ``s3://b/x`` -> ``s3a://b/x``; local paths
    become absolute ``file://`` URIs so executors on other hosts do not resolve them against their
    own working directory."""
    local = local_path(uri)
    if local is not None:
        return "file://" + str(local.resolve())  # not as_uri(): Hadoop does not decode '%3D' back to '='

    sch = scheme(uri)
    return HADOOP_SCHEMES.get(sch, sch) + "://" + str(uri).split("://", 1)[1]


def arrow_paths(uris: list[str]) -> tuple:
    """``(pyarrow filesystem, [paths])`` for URIs on one filesystem (local paths or one scheme)."""
    import pyarrow.fs as pafs

    if not uris:
        return pafs.LocalFileSystem(), []
    if local_path(uris[0]) is not None:
        return pafs.LocalFileSystem(), [str(local_path(u)) for u in uris]
    fs, first = pafs.FileSystem.from_uri(uris[0])
    tail = uris[0].split("://", 1)[1]
    strip = len(tail) - len(first)  # the authority part pyarrow keeps out of paths (hdfs://nn:8020)
    return fs, [u.split("://", 1)[1][strip:] for u in uris]
