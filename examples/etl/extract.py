"""Write a CSV of orders: the pipeline's extract step."""

import csv
import random
import sys
from pathlib import Path

out = Path(sys.argv[1])
out.parent.mkdir(parents=True, exist_ok=True)
rng = random.Random(7)
with out.open("w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["order", "currency", "amount"])
    for i in range(200):
        writer.writerow([i, rng.choice(["EUR", "USD", "GBP"]), f"{rng.uniform(5, 500):.2f}"])
print(f"extracted 200 orders to {out}")
