#!/usr/bin/env python3
"""Refreshes schemas/vendor/ from a directory of upstream schema files.

The validators in the test suite need four upstream schemas (kpack's swagger, Argo CD's Application and
ImageUpdater CRD schemas, prometheus-operator's PrometheusRule). They are kept in the repository as structure only:
every `description` annotation is removed (a property *named* `description` is kept), keys are sorted and the JSON
is written compactly, so the vendored files are small, stable and carry no upstream prose.

Usage: scripts/vendor-schemas.py SOURCE_DIR   (SOURCE_DIR holds the upstream files named as in FILES below)
"""
import json
import pathlib
import sys

FILES = [
    "kpack-v0.17.2-swagger.json",
    "argocd-application-v1alpha1.json",
    "argocd-imageupdater-v1alpha1.json",
    "prometheusrule-v1.json",
]
# Maps whose keys are names chosen by the schema's author, not schema keywords.
NAME_MAPS = {"properties", "definitions", "patternProperties", "$defs"}


def strip(node, in_name_map=False):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not in_name_map and key == "description" and isinstance(value, str):
                continue
            out[key] = strip(value, in_name_map=(not in_name_map and key in NAME_MAPS))
        return out
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    src = pathlib.Path(sys.argv[1])
    dst = pathlib.Path(__file__).resolve().parent.parent / "schemas" / "vendor"
    dst.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        data = json.loads((src / name).read_text())
        (dst / name).write_text(json.dumps(strip(data), sort_keys=True, separators=(",", ":")) + "\n")
        print(f"schemas/vendor/{name}: {(dst / name).stat().st_size} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
