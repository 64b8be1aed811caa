"""Sinks: where accepted reports go. Each is a narrow port with a real implementation
(local directory or S3; SQLite or PostgreSQL; MQTT) and an in-memory one for unit tests."""
