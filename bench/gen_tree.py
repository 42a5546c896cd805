#!/usr/bin/env python3
"""Writes a deterministic source-like tree of about SIZE_MB megabytes in many small files (sizes 1-64 KiB)."""
import os
import random
import sys

out, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
words = [f"{w}{i}" for i, w in enumerate("def class return import from self value name data config build layer image path file".split() * 40)]
target = size_mb * 1024 * 1024
written = 0
n = 0
while written < target:
    d = os.path.join(out, f"pkg{n // 200:03d}", f"mod{(n // 20) % 10}")
    os.makedirs(d, exist_ok=True)
    size = int(rng.expovariate(1 / 10000)) % 65536 + 1024
    lines = []
    length = 0
    while length < size:
        line = "    " * rng.randint(0, 3) + " ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + "\n"
        lines.append(line)
        length += len(line)
    text = "".join(lines)[:size]
    # a little incompressible data too, like assets in real apps
    if n % 50 == 0:
        text += rng.randbytes(4096).hex()
    with open(os.path.join(d, f"file{n:05d}.py"), "w") as f:
        f.write(text)
    written += len(text)
    n += 1
print(n)
