// callrelay's live status page. Asks for an admin API key (kept in this tab's sessionStorage
// only), then polls GET /api/v1/admin/status, /allocations and /calls every second and shows
// the relay's state, its live allocations and calls with bandwidth and quality, the top users
// by bandwidth (summed here from the allocations) and the last warnings and errors. Every value
// from the relay is written with textContent, never parsed as HTML (user names are chosen by
// clients). No dependencies, no inline code: the page runs under `default-src 'self'`.
'use strict';

(() => {
  const API = '/api/v1/admin/';
  const KEY_STORAGE = 'callrelay.status.adminKey';
  const POLL_MS = 1000;
  const TOP_USERS = 10;
  /// Rows drawn at most per table: a relay may hold many thousands of allocations, and a table
  /// redrawn every second must stay cheap. The highest rates come first.
  const MAX_ROWS = 300;
  /// A relay holding more allocations than this sends a large list (a few hundred bytes each):
  /// it is then fetched every BIG_LIST_EVERY polls only, the rest of the page still every second.
  const BIG_LIST = 5000;
  const BIG_LIST_EVERY = 5;

  const $ = (id) => document.getElementById(id);
  let key = null;
  let timer = null;
  let generation = 0;  // bumped on every (re)start, so that a late answer of an old poll is ignored
  let polls = 0;
  let allocationsSeen = null;  // the last allocation list, reused between fetches of a big one

  /// An HTTP answer other than 2xx, with the relay's {"error": ...} text.
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ---- the key --------------------------------------------------------------------------

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null;  // storage disabled: the key lives in this page only
    }
  }

  function storeKey(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // storage disabled: nothing kept
    }
  }

  /// A key fits in an Authorization header: visible ASCII, as api.keys hold them.
  const validKey = (value) => /^[\x21-\x7e]{1,4096}$/.test(value);

  function showKeyForm(message) {
    stop();
    key = null;
    storeKey(null);
    showMessage(message);
    $('dashboard').hidden = true;
    $('forget-key').hidden = true;
    $('key-form').hidden = false;
    $('key-input').value = '';
    $('key-input').focus();
    setConnection('not connected', '');
  }

  function start(value) {
    key = value;
    storeKey(value);
    $('key-form').hidden = true;
    $('forget-key').hidden = false;
    showMessage(null);
    setConnection('connecting...', '');
    stop();
    const gen = ++generation;
    poll(gen);
  }

  function stop() {
    ++generation;
    allocationsSeen = null;
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  // ---- polling --------------------------------------------------------------------------

  async function get(path) {
    const res = await fetch(API + path, {
      headers: { Authorization: `Bearer ${key}` }, cache: 'no-store', credentials: 'omit',
    });
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) {
      const why = body && typeof body.error === 'string' ? body.error : res.statusText;
      throw new ApiError(res.status, why);
    }
    if (!body || typeof body !== 'object') throw new ApiError(res.status, 'the answer is not JSON');
    return body;
  }

  async function poll(gen) {
    try {
      // The status first: a refused key costs one failed attempt, not three, against the
      // relay's per-address budget of failed keys.
      const status = await get('status');
      const fetchAllocations = allocationsSeen === null || allocationsSeen.length <= BIG_LIST ||
          polls % BIG_LIST_EVERY === 0;
      const [allocations, calls] = await Promise.all([
        fetchAllocations ? get('allocations').then((a) => list(a.allocations)) : allocationsSeen,
        get('calls'),
      ]);
      if (gen !== generation) return;
      allocationsSeen = allocations;
      render(status, allocations.slice(), list(calls.calls));
      polls += 1;
      document.body.dataset.polls = String(polls);
      showMessage(null);
      setConnection('live', 'live');
    } catch (err) {
      if (gen !== generation) return;
      if (!(err instanceof ApiError)) {
        showMessage(`The relay does not answer (${err.message}); retrying every second.`);
        setConnection('unreachable', 'error');
      } else if (err.status === 401 || err.status === 403 || err.status === 429) {
        showKeyForm(refusal(err));
        return;
      } else {
        showMessage(`The admin API answered ${err.status}: ${err.message}; retrying every second.`);
        setConnection(`error ${err.status}`, 'error');
      }
    }
    timer = setTimeout(() => poll(gen), POLL_MS);
  }

  function refusal(err) {
    if (err.status === 401) {
      return `The relay refused the key (401: ${err.message}). Enter an admin API key.`;
    }
    if (err.status === 403) {
      return `This key may not read the admin API (403: ${err.message}). ` +
          'Enter a key marked admin: true in api.keys.';
    }
    return `Too many failed key attempts from this address (429: ${err.message}). ` +
        'Wait a minute, then enter the admin API key.';
  }

  // ---- rendering ------------------------------------------------------------------------

  const list = (v) => (Array.isArray(v) ? v.filter((x) => x && typeof x === 'object') : []);
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const text = (v) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v));
  const field = (obj, name) => (obj && typeof obj === 'object' ? obj[name] : undefined);

  function bytes(n) {
    if (n === null) return '-';
    const units = ['B', 'kB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i += 1;
    }
    return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
  }

  /// Bytes per second as bits per second, as bandwidth is usually quoted.
  function rate(bytesPerS) {
    if (bytesPerS === null) return '-';
    let bits = bytesPerS * 8;
    const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s'];
    let i = 0;
    while (bits >= 1000 && i < units.length - 1) {
      bits /= 1000;
      i += 1;
    }
    return `${bits.toFixed(i === 0 || bits >= 100 ? 0 : 1)} ${units[i]}`;
  }

  function duration(s) {
    if (s === null) return '-';
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  const percent = (ratio) => (ratio === null ? '-' : `${(ratio * 100).toFixed(1)} %`);
  const ms = (v) => (v === null ? '-' : `${v.toFixed(1)} ms`);

  /// A table cell: `value` is kept raw in data-value (for sorting by eye and for tests), `shown`
  /// is what the operator reads.
  function cell(row, name, shown, value, numeric = false) {
    const td = row.insertCell();
    td.dataset.field = name;
    if (value !== undefined && value !== null) td.dataset.value = String(value);
    if (numeric) td.className = 'num';
    td.textContent = shown;
    return td;
  }

  function fillTable(id, items, fillRow, empty) {
    const body = $(id).tBodies[0];
    const rows = document.createDocumentFragment();
    for (const item of items.slice(0, MAX_ROWS)) {
      const tr = document.createElement('tr');
      fillRow(tr, item);
      rows.appendChild(tr);
    }
    if (items.length === 0 || items.length > MAX_ROWS) {
      const tr = document.createElement('tr');
      tr.className = 'note';
      const td = tr.insertCell();
      td.colSpan = $(id).tHead.rows[0].cells.length;
      td.textContent = items.length === 0 ? empty : `${items.length - MAX_ROWS} more not shown`;
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
  }

  function render(status, allocations, calls) {
    $('dashboard').hidden = false;
    renderSummary(status);
    const both = (a) => (num(field(a.rate_bytes_per_s, 'client_to_peer')) || 0) +
        (num(field(a.rate_bytes_per_s, 'peer_to_client')) || 0);
    allocations.sort((a, b) => both(b) - both(a));
    renderTopUsers(allocations);
    renderCalls(calls);
    renderAllocations(allocations);
    renderErrors(list(status.recent_errors));
    $('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  function renderSummary(s) {
    const a = field(s, 'allocations') || {};
    const t = field(a, 'by_transport') || {};
    const c = field(s, 'calls') || {};
    const p = field(s, 'relay_ports') || {};
    const transports = ['udp', 'tcp', 'tls']
        .filter((k) => num(t[k]) !== null).map((k) => `${k} ${t[k]}`).join(', ');
    const items = [
      ['version', 'Version', text(s.version)],
      ['uptime', 'Uptime', duration(num(s.uptime_s))],
      ['workers', 'Workers', text(num(s.workers))],
      ['allocations', 'Allocations',
        `${text(num(a.total))}${transports ? ` (${transports})` : ''}`],
      ['calls', 'Calls', `${text(num(c.active))} active, ${text(num(c.connecting))} connecting, ` +
          `${text(num(c.ringing))} ringing`],
      ['signaling', 'Signaling connections', text(num(s.signaling_connections))],
      ['ports', 'Relay ports in use', `${text(num(p.in_use))} of ${text(num(p.total))}`],
      ['state', 'State', s.draining === true ? 'draining' : 'serving'],
    ];
    const dl = document.createDocumentFragment();
    for (const [name, label, value] of items) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.dataset.field = name;
      dd.textContent = value;
      dl.append(dt, dd);
    }
    $('summary').replaceChildren(dl);
    const banner = $('draining');
    banner.hidden = s.draining !== true;
    const deadline = num(s.drain_deadline_s);
    banner.textContent = 'Draining: new allocations are refused; live ones end ' +
        (deadline === null ? 'when their clients leave.' : `within ${duration(deadline)}.`);
  }

  function renderTopUsers(allocations) {
    const users = new Map();
    for (const a of allocations) {
      const user = text(a.user);
      const u = users.get(user) || { user, count: 0, up: 0, down: 0 };
      u.count += 1;
      u.up += num(field(a.rate_bytes_per_s, 'client_to_peer')) || 0;
      u.down += num(field(a.rate_bytes_per_s, 'peer_to_client')) || 0;
      users.set(user, u);
    }
    const top = [...users.values()].sort((x, y) => (y.up + y.down) - (x.up + x.down))
        .slice(0, TOP_USERS);
    fillTable('top-users', top, (tr, u) => {
      tr.dataset.id = u.user;
      cell(tr, 'user', u.user);
      cell(tr, 'allocations', String(u.count), u.count, true);
      cell(tr, 'rate_client_to_peer', rate(u.up), u.up, true);
      cell(tr, 'rate_peer_to_client', rate(u.down), u.down, true);
      cell(tr, 'rate_total', rate(u.up + u.down), u.up + u.down, true);
    }, 'no allocations');
  }

  function renderCalls(calls) {
    $('calls-count').textContent = `(${calls.length})`;
    fillTable('calls', calls, (tr, c) => {
      const q = c.quality && typeof c.quality === 'object' ? c.quality : null;
      const mos = num(field(q, 'mos'));
      tr.dataset.id = text(c.id);
      cell(tr, 'id', text(c.id));
      cell(tr, 'state', text(c.state)).className = `state-${text(c.state)}`;
      cell(tr, 'caller', text(c.caller));
      cell(tr, 'callee', text(c.callee));
      cell(tr, 'age', duration(num(c.age_s)), num(c.age_s), true);
      cell(tr, 'allocations', text(num(c.allocations)), num(c.allocations), true);
      cell(tr, 'mos', mos === null ? '-' : mos.toFixed(1), mos, true);
      cell(tr, 'loss', percent(num(field(q, 'loss_ratio'))), num(field(q, 'loss_ratio')), true);
      cell(tr, 'jitter', ms(num(field(q, 'jitter_ms'))), num(field(q, 'jitter_ms')), true);
      cell(tr, 'rtt', ms(num(field(q, 'rtt_ms'))), num(field(q, 'rtt_ms')), true);
    }, 'no live calls');
  }

  function renderAllocations(allocations) {
    const slow = allocations.length > BIG_LIST ? `, refreshed every ${BIG_LIST_EVERY} s` : '';
    $('allocations-count').textContent = `(${allocations.length}${slow})`;
    fillTable('allocations', allocations, (tr, a) => {
      const b = a.bytes;
      const r = a.rate_bytes_per_s;
      const q = a.quality && typeof a.quality === 'object' ? a.quality : null;
      tr.dataset.id = text(a.id);
      cell(tr, 'id', text(a.id));
      cell(tr, 'user', text(a.user));
      cell(tr, 'transport', `${text(a.transport)}${a.family === 'ipv6' ? ' (IPv6)' : ''}`);
      cell(tr, 'client', text(a.client));
      cell(tr, 'relayed', Array.isArray(a.relayed) ? a.relayed.map(text).join(', ') : '');
      cell(tr, 'age', duration(num(a.age_s)), num(a.age_s), true);
      for (const dir of ['client_to_peer', 'peer_to_client']) {
        cell(tr, `bytes_${dir}`, bytes(num(field(b, dir))), num(field(b, dir)), true);
      }
      for (const dir of ['client_to_peer', 'peer_to_client']) {
        cell(tr, `rate_${dir}`, rate(num(field(r, dir))), num(field(r, dir)), true);
      }
      cell(tr, 'loss', percent(num(field(q, 'loss_ratio'))), num(field(q, 'loss_ratio')), true);
      cell(tr, 'jitter', ms(num(field(q, 'jitter_ms'))), num(field(q, 'jitter_ms')), true);
      cell(tr, 'call', text(a.call_id));
    }, 'no live allocations');
  }

  function renderErrors(errors) {
    const time = (e) => text(e.time);  // RFC 3339 UTC: sorts as text
    const newest = errors.slice()
        .sort((x, y) => (time(x) < time(y) ? 1 : time(x) > time(y) ? -1 : 0));
    fillTable('errors', newest, (tr, e) => {
      cell(tr, 'time', text(e.time));
      cell(tr, 'level', text(e.level)).className = `level-${text(e.level)}`;
      cell(tr, 'event', text(e.event));
      cell(tr, 'message', text(e.message));
    }, 'none since the relay started');
  }

  // ---- page chrome ----------------------------------------------------------------------

  function showMessage(message) {
    const p = $('message');
    p.hidden = !message;
    p.textContent = message || '';
  }

  function setConnection(label, state) {
    const c = $('connection');
    c.textContent = label;
    c.className = `connection ${state}`;
    document.body.dataset.connection = state || 'none';
  }

  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = $('key-input').value.trim();
    if (!validKey(value)) {
      showMessage('An API key is visible ASCII characters only (no spaces).');
      return;
    }
    start(value);
  });
  $('forget-key').addEventListener('click', () => showKeyForm(null));

  const saved = storedKey();
  if (saved && validKey(saved)) start(saved);
  else showKeyForm(null);
})();
