#!/usr/bin/env python3
"""Prints a JSON Schema for one kpack definition from the kpack swagger file.

kpack's CRDs carry no schema, so the swagger definitions are the reference. With --strict every object definition
also gets `additionalProperties: false` (the swagger omits it), so a misspelled field is an error, as kpack's
webhook and Kubernetes' strict decoding would make it.
`status` is never required of the resource itself (the controller writes it).
Usage: kpack-schema.py SWAGGER.json DEFINITION [--strict] > schema.json
"""
import json
import sys

swagger, name = sys.argv[1], sys.argv[2]
strict = "--strict" in sys.argv[3:]
defs = json.load(open(swagger))["definitions"]
if strict:
    for d in defs.values():
        if d.get("type") == "object" and "properties" in d:
            d.setdefault("additionalProperties", False)
# `status` is written by the kpack controller, never by us: the swagger marks it required on the cluster resources.
top = defs[name]
if "status" in top.get("required", []):
    top["required"] = [r for r in top["required"] if r != "status"]
json.dump({"$schema": "http://json-schema.org/draft-07/schema#", "$ref": f"#/definitions/{name}", "definitions": defs}, sys.stdout)
