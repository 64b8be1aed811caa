"""Run every benchmark; each writes bench/results/<name>.json and prints its result."""

from __future__ import annotations

import json

from bench import (
    case_stats,
    cluster,
    console,
    fleet,
    geo,
    ingest,
    media,
    nmea,
    pipeline,
    s3_clients,
    sinks,
    tls,
)

for module in (
    pipeline,
    ingest,
    tls,
    sinks,
    s3_clients,
    media,
    geo,
    nmea,
    fleet,
    console,
    cluster,
    case_stats,
):
    print(json.dumps(module.run(), indent=2), flush=True)
