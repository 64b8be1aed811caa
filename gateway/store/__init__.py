"""The gateway's durable local stores: the inbox and the outbox (SQLite, WAL)."""
