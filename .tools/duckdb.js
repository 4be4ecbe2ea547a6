// Runs SQL with DuckDB, the embedded engine that stands in for Athena
// offline. stdin: {"dir": folder to run in, "statements": [sql, ...]};
// stdout: a JSON array with each statement's rows (objects; values as
// JSON-safe strings, numbers and nulls).
'use strict';
const path = require('path');
const { DuckDBInstance } = require(path.join(__dirname, 'node_modules', '@duckdb', 'node-api'));

async function main() {
  let input = '';
  for await (const chunk of process.stdin) input += chunk;
  const { dir, statements } = JSON.parse(input);
  process.chdir(dir);
  const instance = await DuckDBInstance.create(':memory:', {
    // Offline: the json and parquet extensions are built in; never download.
    autoinstall_known_extensions: 'false', autoload_known_extensions: 'true',
  });
  const db = await instance.connect();
  await db.run("SET TimeZone = 'UTC'"); // as Athena's current_timestamp
  const out = [];
  for (const sql of statements) {
    try {
      const reader = await db.runAndReadAll(sql);
      out.push(reader.getRowObjectsJson());
    } catch (e) {
      throw new Error(`${e.message}\nin: ${sql}`);
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
