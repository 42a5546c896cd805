#!/usr/bin/env node
// Renders a Backstage skeleton file the way the scaffolder's `fetch:template` does: nunjucks with `${{ }}` as the
// variable delimiters, no autoescaping. Usage: node scripts/backstage-render.cjs SKELETON_FILE VALUES_JSON
// Prints the rendered file name (first line) and contents (the rest).
"use strict";
const { readFileSync } = require("node:fs");
const { basename, join } = require("node:path");
const nunjucks = require(join(__dirname, "..", ".cache", "tools", "node_modules", "nunjucks"));

const [file, valuesJson] = process.argv.slice(2);
if (!file || !valuesJson) {
  console.error("usage: backstage-render.cjs SKELETON_FILE VALUES_JSON");
  process.exit(2);
}
const env = new nunjucks.Environment(null, {
  autoescape: false,
  tags: { variableStart: "${{", variableEnd: "}}" },
});
const values = JSON.parse(valuesJson);
const name = env.renderString(basename(file), { values });
const body = env.renderString(readFileSync(file, "utf8"), { values });
process.stdout.write(`${name}\n${body}`);
