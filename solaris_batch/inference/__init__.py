"""Shard runner: plan shard -> user-grouped batches -> FM -> embedding shard."""
