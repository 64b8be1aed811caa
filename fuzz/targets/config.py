"""Any bytes as the gateway's TOML config file, through `load_config` (as `gateway run
--config` and `gateway check-config` read it): a config, or `ConfigError` listing each
problem."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fuzz.invariant import require
from gateway.config import GatewayConfig, load_config
from gateway.errors import ConfigError

# One scratch file for the whole run: load_config reads a path, and a fresh directory per
# input would cost more than the parse. Relative paths in the input resolve inside it.
_SCRATCH = Path(tempfile.mkdtemp(prefix="cgt-fuzz-config-"))
_FILE = _SCRATCH / "gateway.toml"


def one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        config = load_config(_FILE)
    except ConfigError as error:
        require(bool(error.problems), "a ConfigError naming no problem")
        require(all(isinstance(p, str) and p for p in error.problems), "a blank problem")
        return
    require(isinstance(config, GatewayConfig), f"load_config returned {type(config).__name__}")
    # What `check-config` and `gateway run` read next must not raise either (a registry URL
    # with a bad port once passed here and crashed registry_description()).
    repr(config)
    config.registry_description()
    config.objects_description()
    config.metrics.address()
    require(0 < config.mqtt.port < 65536, f"broker port {config.mqtt.port}")
