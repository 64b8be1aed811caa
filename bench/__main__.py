"""Run every benchmark; each writes bench/results/<name>.json."""

from __future__ import annotations

import json

from bench import ingest

for module in (ingest,):
    print(json.dumps(module.run(), indent=2))
