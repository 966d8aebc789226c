"""Check the orders file; ETL_BREAK=validate makes it fail (for trying --resume)."""

import csv
import os
import sys

if os.environ.get("ETL_BREAK") == "validate":
    print("validation failed: order 17 has a negative amount", file=sys.stderr)
    sys.exit(3)
with open(sys.argv[1], newline="") as f:
    rows = list(csv.DictReader(f))
assert rows and all(float(r["amount"]) > 0 for r in rows)
print(f"{len(rows)} orders are valid")
