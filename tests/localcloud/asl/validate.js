#!/usr/bin/env node
// asl-validator's verdict on state machine definitions, as JSON:
// {"valid": bool, "errors": [{"code": "...", "message": "..."}]}.
//   node validate.js < definition.json     one definition (its text) on stdin, one verdict
//   node validate.js --serve               one JSON-encoded definition text per stdin line,
//                                          one verdict per stdout line (loading asl-validator
//                                          costs ~0.7 s of CPU; tests/localcloud/asl_validation.py
//                                          keeps one such process)
"use strict";
const readline = require("readline");
const validator = require("asl-validator");

function verdict(text) {
  let definition;
  try {
    definition = JSON.parse(text);
  } catch (err) {
    return result([{ code: "SCHEMA_VALIDATION_FAILED", message: `The definition is not valid JSON: ${err.message}` }]);
  }
  const checked = validator(definition, { checkArn: true, checkPaths: true });
  return result(checked.errors.map((e) => ({ code: e["Error code"], message: e.Message })));
}

function result(errors) {
  return JSON.stringify({ valid: errors.length === 0, errors });
}

if (process.argv.includes("--serve")) {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    let answer;
    try {
      answer = verdict(JSON.parse(line));
    } catch (err) {
      answer = JSON.stringify({ failure: String(err && err.stack || err) });
    }
    process.stdout.write(answer + "\n");
  });
  lines.on("close", () => process.exit(0));  // stdin closed: the Python side is done
} else {
  let text = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => process.stdout.write(verdict(text)));
}
