"""Fetch exchange rates: fails on its first attempt, as a flaky service does.

The command line tells a command which attempt it is in WAVE_ATTEMPT.
"""

import json
import os
import sys
from pathlib import Path

attempt = int(os.environ.get("WAVE_ATTEMPT", "1"))
if attempt < 2:
    print(f"attempt {attempt}: rates service answered 503 Service Unavailable", file=sys.stderr)
    sys.exit(75)
out = Path(sys.argv[1])
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps({"EUR": 1.0, "USD": 0.92, "GBP": 1.17}))
print(f"attempt {attempt}: rates saved to {out}")
