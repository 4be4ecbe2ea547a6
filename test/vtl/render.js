// Renders API Gateway mapping templates with velocityjs against emulated
// $input, $util and $context objects, as API Gateway documents them.
// stdin: JSON array of cases {template, body, headers, query, requestId, requestOverride};
// stdout: JSON array of {output, status, requestOverride} (status:
// $context.responseOverride.status, or null; requestOverride: what a request
// template set, which a response case may be given to see it).
'use strict';
const path = require('path');
const { render, Compile } = require(path.join(__dirname, '..', '..', '.tools', 'node_modules', 'velocityjs'));

// API Gateway's Velocity stops a #foreach after 1,000 iterations ("Quotas for
// configuring and running a REST API"), while $foreach.hasNext still sees the
// items left, as Velocity's directive.foreach.maxloops does; velocityjs has no
// limit. This is velocityjs 2.1.7's getBlockEach (the version .tools pins)
// with that limit, so a test of a longer batch sees what API Gateway would do.
const MAX_LOOPS = 1000;
let loopId = 0;
Compile.prototype.getBlockEach = function (block) {
  const ast = block[0];
  const from = this.getLiteral({ ...ast.from, pos: ast.pos });
  const body = block.slice(1);
  const local = { foreach: { count: 0, index: 0, hasNext: false }, velocityCount: 0 };
  let ret = '';
  const contextId = `foreach:${++loopId}`;
  const type = {}.toString.call(from);
  if (!from || (type !== '[object Array]' && type !== '[object Object]')) return '';
  const items = Array.isArray(from) ? from : Object.values(from);
  const len = items.length;
  items.forEach((val, i) => {
    if (this.runState.break || i >= MAX_LOOPS) return;
    local[ast.to] = val;
    local.foreach = { count: i + 1, index: i, hasNext: i + 1 < len };
    local.velocityCount = i + 1;
    this.local[contextId] = local;
    ret += this.renderAstList(body, contextId);
  });
  if (from?.length) {
    this.runState.break = false;
    this.local[contextId] = {};
    this.conditions.shift();
    this.contextId = this.conditions[0] || '';
  }
  return ret;
};

// API Gateway's VTL runs on Java: strings have Java's methods, and replaceAll
// takes a regular expression. Velocity string literals keep backslashes as
// written, so "\\'" reaches Java as the regex \\' (a backslash, then ').
String.prototype.contains = function (s) { return this.includes(String(s)); };
Array.prototype.size = function () { return this.length; }; // java.util.List
String.prototype.replaceAll = function (regex, replacement) {
  return this.replace(new RegExp(String(regex), 'g'), () => String(replacement));
};
// Java's String.matches: the whole string, with Java's inline (?s) flag.
String.prototype.matches = function (regex) {
  let re = String(regex), flags = '';
  if (re.startsWith('(?s)')) { re = re.slice(4); flags = 's'; }
  return new RegExp('^(?:' + re + ')$', flags).test(this);
};

// JSONPath as far as mapping templates use it: $, $.a.b, $['a'], $[0].
function jsonPath(root, expr) {
  if (expr === '$') return root;
  const re = /\.([A-Za-z_$][\w$]*)|\[(\d+)\]|\['([^']*)'\]/g;
  let v = root, m, consumed = 1;
  while ((m = re.exec(expr)) !== null) {
    if (m.index !== consumed) throw new Error('unsupported JSONPath ' + expr);
    consumed = re.lastIndex;
    const key = m[1] ?? (m[2] !== undefined ? Number(m[2]) : m[3]);
    v = v == null ? undefined : v[key];
  }
  if (consumed !== expr.length) throw new Error('unsupported JSONPath ' + expr);
  return v;
}

// commons-lang StringEscapeUtils.escapeJavaScript, which $util.escapeJavaScript is.
function escapeJavaScript(s) {
  if (s == null) return s;
  let out = '';
  for (const ch of String(s)) {
    const c = ch.codePointAt(0);
    const hex = (n) => '\\u' + n.toString(16).toUpperCase().padStart(4, '0');
    if (c > 0xffff) { // Java works in UTF-16 code units
      const hi = Math.floor((c - 0x10000) / 0x400) + 0xd800, lo = ((c - 0x10000) % 0x400) + 0xdc00;
      out += hex(hi) + hex(lo);
    } else if (c > 0x7f) out += hex(c);
    else if (ch === '"') out += '\\"';
    else if (ch === "'") out += "\\'";
    else if (ch === '\\') out += '\\\\';
    else if (ch === '/') out += '\\/';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\r') out += '\\r';
    else if (c < 32) out += hex(c);
    else out += ch;
  }
  return out;
}

function renderCase(c) {
  let parsed;
  try { parsed = JSON.parse(c.body); } catch { parsed = undefined; }
  const headers = {};
  for (const [k, v] of Object.entries(c.headers || {})) headers[k.toLowerCase()] = v;
  const query = c.query || {};
  const requestOverride = c.requestOverride || { header: {}, path: {}, querystring: {} };
  const context = { requestId: c.requestId || 'req-1', responseOverride: { status: null }, requestOverride };
  const input = {
    body: c.body,
    json: (p) => JSON.stringify(jsonPath(parsed, p)),
    path: (p) => jsonPath(parsed, p),
    // path, then query string, then header (headers match case-insensitively); "" when absent
    params: (name) => query[name] ?? headers[String(name).toLowerCase()] ?? '',
  };
  const util = {
    escapeJavaScript,
    base64Encode: (s) => Buffer.from(String(s), 'utf8').toString('base64'),
  };
  const output = render(c.template, { input, util, context });
  return { output, status: context.responseOverride.status, requestOverride };
}

let stdin = '';
process.stdin.on('data', (d) => { stdin += d; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify(JSON.parse(stdin).map(renderCase)));
});
