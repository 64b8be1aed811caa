"""cgt-gateway: the device gateway and media ingestion pipeline for 城管通 terminals."""

__version__ = "0.1.0"
