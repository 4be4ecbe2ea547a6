// Runs SQL with DuckDB, the embedded engine that stands in for Athena
// offline. stdin: {"dir": folder to run in, "statements": [sql, ...]};
// stdout: a JSON array with each statement's rows (objects; values as
// JSON-safe strings, numbers and nulls).
'use strict';
const fs = require('fs');
const os = require('os');
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
  for (const statement of statements) {
    let sql = statement;
    for (let tries = 0; ; tries++) {
      try {
        const reader = await db.runAndReadAll(sql);
        out.push(reader.getRowObjectsJson());
        break;
      } catch (e) {
        // Athena reads a table whose folders hold no object as empty; DuckDB
        // refuses a view over a pattern that matches no file. Read an empty
        // file instead (the view's columns are explicit, so it binds).
        const missing = /No files found that match the pattern "([^"]*)"/.exec(e.message);
        if (missing && tries < 10 && /^\s*CREATE (OR REPLACE )?VIEW/i.test(sql) && sql.includes(`'${missing[1]}'`)) {
          const empty = path.join(os.tmpdir(), `tributary-duckdb-empty-${process.pid}`);
          fs.writeFileSync(empty, '');
          process.on('exit', () => fs.rmSync(empty, { force: true }));
          sql = sql.split(`'${missing[1]}'`).join(`'${empty}'`);
          continue;
        }
        throw new Error(`${e.message}\nin: ${sql}`);
      }
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
