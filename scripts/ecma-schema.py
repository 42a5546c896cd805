#!/usr/bin/env python3
"""Prints a copy of a JSON Schema whose Python-only inline `(?i)` regex flags are rewritten as ECMA-262 regexes.

The upstream PrometheusRule schema uses `^(?i)(abort|warn)?$`, which JSON Schema validators that follow the spec
(ECMA regexes) refuse to load. The rewrite spells each letter as a two-case class: `(?i)ab` -> `[aA][bB]`.
Usage: ecma-schema.py SCHEMA.json > schema.json
"""
import json
import re
import sys


def ecma(pattern: str) -> str:
    if "(?i)" not in pattern:
        return pattern
    body = pattern.replace("(?i)", "")
    return re.sub(r"(?<!\\)[A-Za-z]", lambda m: f"[{m.group(0).lower()}{m.group(0).upper()}]", body)


def walk(node):
    if isinstance(node, dict):
        return {k: (ecma(v) if k == "pattern" and isinstance(v, str) else walk(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v) for v in node]
    return node


json.dump(walk(json.load(open(sys.argv[1]))), sys.stdout)
