// The server log in either format (log.format text or json), for the node test harnesses:
// CALLRELAY_TEST_LOG_FORMAT=json (scripts/test.sh sets it for the sanitizer stage) makes the
// configs they write log JSON lines, and checkJsonLog() finds every line that is not one JSON
// object. lineRe() and listeningPort() match a line in both formats, as common.sh's log_line
// and logged_port do.
'use strict';

const LOG_FORMAT = process.env.CALLRELAY_TEST_LOG_FORMAT || 'text';
const PREFIX = { error: 'error: ', warn: 'warning: ', info: '', debug: 'debug: ' };
const SANITIZER = /AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error:|^==\d+==/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/// The config line `log: {level: LEVEL}` plus `format: json` when the run asks for JSON logs.
function logConfigLine(level = 'info') {
  return LOG_FORMAT === 'json' ? `log: {level: ${level}, format: json}` : `log: {level: ${level}}`;
}

/// A multiline RegExp for a whole log line at `level` whose message matches `message` (a
/// regular expression source): "warning: MSG" in text, {"level":"warn",...,"message":"MSG"}
/// in json.
function lineRe(message, level = 'info', flags = 'm') {
  return new RegExp(
    `(?:^${PREFIX[level]}(?:${message})$|"level":"${level}",.*"message":"(?:${message})"\\}$)`,
    flags);
}

/// The first match of lineRe(message, level) in `output`: its capture groups (the message's
/// own, from whichever format matched), or null.
function matchLine(output, message, level = 'info') {
  const m = output.match(lineRe(message, level));
  if (!m) return null;
  const groups = m.slice(1);
  const half = groups.length / 2;  // the message is in the pattern twice, once per format
  return groups[0] !== undefined || half === 0 ? groups.slice(0, half) : groups.slice(half);
}

/// The port of the first "listening PROTO ADDRESS:PORT" line (ADDRESS a RegExp source), or
/// null.
function listeningPort(output, proto, address) {
  const g = matchLine(output, `listening ${proto} ${address}:(\\d+)`);
  return g ? Number(g[0]) : null;
}

/// Why `line` is not a valid JSON log line, or null.
function problem(line) {
  let obj;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    return `not JSON (${e.message})`;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return 'not a JSON object';
  for (const k of ['time', 'level', 'event', 'message']) if (!(k in obj)) return `no ${k}`;
  if (!TIME.test(obj.time)) return `time ${obj.time} is not RFC 3339 UTC with milliseconds`;
  if (!['error', 'warn', 'info', 'debug'].includes(obj.level)) return `level ${obj.level}`;
  return null;
}

/// With JSON logs: the lines of `output` that are not one JSON object ("N: why: line"), up to
/// the first sanitizer report (which fails the test by itself). Empty otherwise.
function checkJsonLog(output) {
  if (LOG_FORMAT !== 'json') return [];
  const bad = [];
  const lines = output.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    if (SANITIZER.test(line)) break;
    const why = problem(line);
    if (why) bad.push(`${i + 1}: ${why}: ${line.slice(0, 300)}`);
  }
  return bad;
}

module.exports = { LOG_FORMAT, logConfigLine, lineRe, matchLine, listeningPort, checkJsonLog };
