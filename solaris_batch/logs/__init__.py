"""Request logs: the canonical Hive-partitioned table, its reader, and the simulator."""
