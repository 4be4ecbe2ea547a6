// Runs jq 1.6 compiled to WebAssembly (jq-web 0.5.1, pinned in .tools: its
// jq is jq 1.6's own source), one request per line on stdin:
// {"query": ..., "input": ...}; one answer per line on stdout: {"out": ...}
// (as `jq -c` prints it) or {"error": ...} (jq's message). Started with
// TZ=UTC: this build's date functions are JavaScript's, in local time.
'use strict';
const path = require('path');
const readline = require('readline');

// Without fetch, Emscripten reads the .wasm file from disk (Node's fetch
// takes no file path).
const fetch = globalThis.fetch;
globalThis.fetch = undefined;
const jq = require(path.join(__dirname, '..', '..', '.tools', 'node_modules', 'jq-web', 'jq.wasm.js'));
globalThis.fetch = fetch;

const lines = readline.createInterface({ input: process.stdin });
(async () => {
  for await (const line of lines) {
    const { query, input } = JSON.parse(line);
    let answer;
    try {
      answer = { out: await jq.promised.raw(input, query, ['-c']) };
    } catch (e) {
      answer = { error: String(e.stack || e).trim() };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
})().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
