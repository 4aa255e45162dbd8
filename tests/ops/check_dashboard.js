// Checks deploy/grafana/callrelay-dashboard.json (ctest: ops.grafana_dashboard): it is valid
// JSON of the shape Grafana imports, every panel queries the templated Prometheus data source,
// panel ids are unique, panels fit the 24-column grid without overlapping, and every
// callrelay_* metric the dashboard or the alerting rules name is documented in the metric
// documentation: the README, plus any further Markdown files given (a section written apart
// before it is merged into the README), so a renamed metric cannot leave a silent, empty panel
// or an alert that never fires.
//
// Usage: node check_dashboard.js DASHBOARD.json ALERTS.yml README.md [MORE.md...]
'use strict';

const fs = require('node:fs');

const [dashboardPath, alertsPath, ...metricsDocPaths] = process.argv.slice(2);
if (metricsDocPaths.length === 0) {
  console.error('usage: node check_dashboard.js DASHBOARD.json ALERTS.yml README.md [MORE.md...]');
  process.exit(2);
}

const problems = [];
const problem = (msg) => problems.push(msg);

const dashboard = JSON.parse(fs.readFileSync(dashboardPath, 'utf8'));
for (const key of ['title', 'uid', 'panels', 'templating', 'schemaVersion']) {
  if (dashboard[key] === undefined) problem(`dashboard has no "${key}"`);
}
const variables = new Set((dashboard.templating?.list || []).map((v) => v.name));
for (const name of ['datasource', 'instance']) {
  if (!variables.has(name)) problem(`templating variable $${name} is missing`);
}

// Panels (rows included) and their queries.
const ids = new Set();
const exprs = [];
const placed = [];
for (const panel of dashboard.panels || []) {
  const where = `panel ${panel.id} "${panel.title}"`;
  if (typeof panel.id !== 'number' || ids.has(panel.id)) problem(`${where}: id missing or duplicated`);
  ids.add(panel.id);
  const g = panel.gridPos || {};
  if (!(g.w > 0 && g.h > 0 && g.x >= 0 && g.x + g.w <= 24 && g.y >= 0)) {
    problem(`${where}: gridPos ${JSON.stringify(g)} does not fit the 24-column grid`);
  }
  for (const other of placed) {
    const o = other.gridPos;
    if (g.x < o.x + o.w && o.x < g.x + g.w && g.y < o.y + o.h && o.y < g.y + g.h) {
      problem(`${where}: overlaps panel ${other.id} "${other.title}"`);
    }
  }
  placed.push(panel);
  if (panel.type === 'row') continue;
  if (!panel.title) problem(`${where}: no title`);
  if (!panel.targets || panel.targets.length === 0) problem(`${where}: no query`);
  for (const t of panel.targets || []) {
    if (!t.expr || !t.expr.trim()) problem(`${where}: target ${t.refId} has no expr`);
    if (t.datasource?.uid !== '${datasource}') problem(`${where}: target ${t.refId} does not use $datasource`);
    if (t.expr) exprs.push({ where, expr: t.expr });
    for (const v of (t.expr || '').matchAll(/\$(\w+)/g)) {
      if (v[1] !== '__rate_interval' && !variables.has(v[1])) problem(`${where}: unknown variable $${v[1]}`);
    }
  }
}
if (exprs.length < 10) problem(`only ${exprs.length} queries: the dashboard lost its panels`);

// Every metric named by the dashboard and the rules is documented.
const missingDocs = metricsDocPaths.filter((p) => !fs.existsSync(p));
const docNames = metricsDocPaths.join(' or ');
if (missingDocs.length > 0) {
  problem(`${missingDocs.join(', ')} does not exist: cannot check the metric names`);
} else {
  const metricsDoc = metricsDocPaths.map((p) => fs.readFileSync(p, 'utf8')).join('\n');
  const documented = new Set(metricsDoc.match(/callrelay_[a-z0-9_]+/g) || []);
  const baseName = (name) => name.replace(/_(bucket|sum|count)$/, '');
  const used = new Map();
  for (const { where, expr } of exprs) {
    for (const m of expr.match(/callrelay_[a-z0-9_]+/g) || []) used.set(m, where);
  }
  const alerts = fs.readFileSync(alertsPath, 'utf8');
  for (const m of alerts.match(/callrelay_[a-z0-9_]+/g) || []) {
    if (!used.has(m)) used.set(m, alertsPath);
  }
  for (const [name, where] of used) {
    if (!documented.has(name) && !documented.has(baseName(name))) {
      problem(`${where}: metric ${name} is not in ${docNames}`);
    }
  }
  console.log(`${used.size} metric names checked against ${docNames}`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`FAIL: ${p}`);
  process.exit(1);
}
console.log(`ok: ${ids.size} panels, ${exprs.length} queries`);
