"""One exception class per expected failure, each naming the fix.

The CLI prints ``SolarisError`` subclasses as a single line and exits non-zero; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations


class SolarisError(Exception):
    """Base of every expected, user-actionable failure."""

    exit_code = 2


class ConfigError(SolarisError):
    """A setting or command-line value is invalid."""


class InputNotFound(SolarisError):
    """A path the command reads does not exist."""


class PartitionMissing(SolarisError):
    """An hour partition of the request log is absent."""


class PartitionIncomplete(SolarisError):
    """An hour partition exists but has no ``_SUCCESS`` marker yet."""


class EmptyWindow(SolarisError):
    """A time window holds no usable rows."""


class SchemaMismatch(SolarisError):
    """A table does not match its documented data contract."""


class CheckpointError(SolarisError):
    """A model checkpoint is missing, corrupt, or does not match its config."""


class ValidationFailed(SolarisError):
    """Embeddings failed a publish gate; CURRENT was left untouched."""


class SnapshotNotFound(SolarisError):
    """No snapshot (or no CURRENT pointer) exists for a model name."""


class QualityAlert(SolarisError):
    """A monitored quality metric fell below its threshold (the metrics were still recorded)."""


class InvalidInput(SolarisError, TypeError):
    """A caller passed values of the wrong type or shape (e.g. float ids to ``lookup``)."""
