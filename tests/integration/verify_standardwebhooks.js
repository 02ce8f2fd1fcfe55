#!/usr/bin/env node
// Verifies one webhook with the off-the-shelf Standard Webhooks library (npm `standardwebhooks`,
// installed by the test suite with `npm install --prefix tests/integration/.npm standardwebhooks`).
//
// stdin: {"secret": "whsec_...", "headers": {"webhook-id": ..., "webhook-timestamp": ...,
//          "webhook-signature": ...}, "body_b64": "<the raw body, base64>"}  ("body": "<text>" also works)
// exit 0: new Webhook(secret).verify(body, headers) succeeded
// exit 1: verification failed (reason on stderr)
// exit 2: bad input, or the package is not installed
//
// Note: the library checks `v1` signatures only and ignores other versions (such as `v1a`).
"use strict";

const path = require("path");

let Webhook;
try {
  const where = require.resolve("standardwebhooks", {
    paths: [path.join(__dirname, ".npm"), __dirname],
  });
  ({ Webhook } = require(where));
} catch (e) {
  process.stderr.write(`standardwebhooks is not installed: ${e.message}\n`);
  process.exit(2);
}

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  let input;
  try {
    input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (e) {
    process.stderr.write(`bad input JSON: ${e.message}\n`);
    process.exit(2);
  }
  if (typeof input.secret !== "string" || typeof input.headers !== "object" || input.headers === null) {
    process.stderr.write("input needs secret (string) and headers (object)\n");
    process.exit(2);
  }
  const body = typeof input.body_b64 === "string"
    ? Buffer.from(input.body_b64, "base64")
    : Buffer.from(String(input.body ?? ""), "utf8");
  try {
    new Webhook(input.secret).verify(body, input.headers);
  } catch (e) {
    process.stderr.write(`${e.name}: ${e.message}\n`);
    process.exit(1);
  }
  process.stdout.write("verified\n");
  process.exit(0);
});
