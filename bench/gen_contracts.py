#!/usr/bin/env python3
"""Writes N valid, varied AppDeploymentRequest contracts as a contracts repository (deterministic for a given N)."""
import os
import random
import shutil
import sys

n = int(sys.argv[1])
out = sys.argv[2]
config = sys.argv[3]
rng = random.Random(42)
envs = {"dev": "dev.goldenpath.io", "staging": "staging.goldenpath.io", "prod": "goldenpath.io"}
teams = ["payments-team", "web-team", "data-team", "platform-team", "search-team"]
binding_types = ["database", "cache", "queue", "secret"]

shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)
shutil.copy(config, os.path.join(out, "goldenpath.toml"))
for i in range(n):
    env = list(envs)[i % 3]
    app = f"app-{i:05d}"
    cid = f"APP-{i:05d}"
    d = os.path.join(out, "docs/20-contracts/app-deployments", env)
    os.makedirs(d, exist_ok=True)
    lines = [
        "apiVersion: goldenpath.io/v1",
        "kind: AppDeploymentRequest",
        f"id: {cid}",
        f"environment: {env}",
        f"owner: {rng.choice(teams)}",
        f"application: {app}",
        "spec:",
        "  source:",
        "    git:",
        f"      url: https://github.com/goldenpath-io/{app}",
        f"      branch: {rng.choice(['main', 'release', 'develop'])}",
        "  build:",
    ]
    if rng.random() < 0.8:
        lines += ["    type: buildpack", f"    builder: {rng.choice(['default', 'python'])}"]
        if rng.random() < 0.5:
            lines += ["    env:", "      - name: BP_NODE_VERSION", '        value: "20"']
    else:
        lines += ["    type: dockerfile", "    context: .", "    dockerfile: Dockerfile"]
    replicas = rng.randint(2, 6) if env == "prod" else rng.randint(1, 4)
    lines += [
        "  runtime:",
        f"    replicas: {replicas}",
        "    resources:",
        f"      memory: {rng.choice(['128Mi', '256Mi', '512Mi', '1Gi', '2Gi'])}",
        f"      cpu: {rng.choice(['100m', '250m', '500m', '1'])}",
    ]
    if rng.random() < 0.6:
        lines += ["  ingress:", "    enabled: true", f"    host: {app}.{envs[env]}"]
    else:
        lines += ["  ingress:", "    enabled: false"]
    k = rng.randint(0, 3)
    if k:
        lines.append("  bindings:")
        for j in range(k):
            t = binding_types[(i + j) % 4]
            lines += [f"    - type: {t}", f"      name: {app}-{t}-{j}"]
            if t != "secret":
                lines.append(f"      ref: RDS-{i:04d}")
    with open(os.path.join(d, f"{cid}.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
