// The admin page: reads and changes the gateway through its admin API.
// The admin token lives in sessionStorage (this tab only); a new key's
// secret is shown once in the page and kept nowhere.
'use strict';

(() => {
  const DAY = 86400;
  const DAYS = 14;
  const MAX_SERIES = 8; // the rest of the series are drawn as one "Other"
  const REFRESH_MS = 30000;
  const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948',
    '#b07aa1', '#ff9da7', '#9c755f'];
  const OTHER_COLOR = '#bab0ac';
  const SVG = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const session = window.sessionStorage;
  const ui = { split: 'model', metric: 'cost' };
  let auth = null; // {token, base}
  let data = null; // the last load
  let loading = false;
  let reload = false; // a load was asked for while one ran

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function defaultBase() {
    const meta = document.querySelector('meta[name="s2a-admin-base"]');
    return (meta && meta.content) || '/admin/';
  }

  function normalBase(base) {
    base = base.trim();
    return base.endsWith('/') ? base : base + '/';
  }

  async function api(method, path, body) {
    const init = { method, cache: 'no-store', headers: { Authorization: 'Bearer ' + auth.token } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(auth.base + path, init);
    } catch (e) {
      throw new ApiError(0, 'The admin API at ' + auth.base + ' cannot be reached.');
    }
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch (e) {
      json = null;
    }
    if (!res.ok) {
      const msg = json && json.error && json.error.message;
      throw new ApiError(res.status, msg || 'HTTP ' + res.status + ' from ' + auth.base + path);
    }
    if (json === null) {
      throw new ApiError(res.status, 'The answer of ' + auth.base + path +
        ' is not JSON: is this the admin API?');
    }
    const date = Date.parse(res.headers.get('Date') || '');
    json.serverNow = Number.isNaN(date) ? Date.now() / 1000 : date / 1000;
    return json;
  }

  function explain(err) {
    switch (err.status) {
      case 401: return 'The admin token was not accepted (401). Check Sub2apiAdminToken.';
      case 403: return 'Access denied (403): ' + err.message;
      case 404: return 'No admin API at ' + auth.base + ' (404). Check the Admin API path.';
      default: return err.message;
    }
  }

  // ---- formatting ----

  const intFmt = new Intl.NumberFormat('en-US');

  // "$1,234.50" from a decimal text, keeping every digit past the cents.
  function usdText(text) {
    const neg = text.startsWith('-');
    const [whole, frac = ''] = text.replace('-', '').split('.');
    return (neg ? '-$' : '$') + intFmt.format(Number(whole)) + '.' + frac.padEnd(2, '0');
  }

  // Short money for tiles and axes.
  function usdShort(nano) {
    const v = nano / 1e9;
    const a = Math.abs(v);
    const digits = a === 0 || a >= 100 ? 0 : a >= 1 ? 2 : a >= 0.01 ? 3 : 6;
    return (v < 0 ? '-$' : '$') + a.toLocaleString('en-US', {
      minimumFractionDigits: Math.min(digits, 2), maximumFractionDigits: digits,
    });
  }

  function countShort(v) {
    if (v >= 1e9) return (v / 1e9).toFixed(v >= 1e10 ? 0 : 1) + 'B';
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(v >= 1e5 ? 0 : 1) + 'k';
    return intFmt.format(v);
  }

  const pad = (n) => String(n).padStart(2, '0');

  // Local time: "14:05" today, "2025-11-28 14:05" on another day.
  function clock(unix, seconds) {
    const d = new Date(unix * 1000);
    const hm = pad(d.getHours()) + ':' + pad(d.getMinutes()) + (seconds ? ':' + pad(d.getSeconds()) : '');
    if (d.toDateString() === new Date().toDateString()) return hm;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hm;
  }

  function span(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + 's';
    if (seconds < 3600) return Math.floor(seconds / 60) + 'm ' + pad(seconds % 60) + 's';
    if (seconds < 2 * DAY) return Math.floor(seconds / 3600) + 'h ' + pad(Math.floor(seconds % 3600 / 60)) + 'm';
    return Math.floor(seconds / DAY) + 'd';
  }

  function ago(unix, now) {
    return unix ? span(now - unix) + ' ago' : 'never';
  }

  function dateText(unix) {
    const d = new Date(unix * 1000);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate());
  }

  // ---- DOM helpers (text only: nothing from the API is parsed as HTML) ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v;
      else if (k === 'title') node.title = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const badge = (cls, text, title) => el('span', { class: 'badge ' + cls, title: title || '' }, text);

  function fillBody(table, rows, cols, emptyText) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...(rows.length ? rows : [
      el('tr', {}, el('td', { class: 'empty', colspan: cols }, emptyText))]));
  }

  function fillSelect(select, items, label) {
    const keep = Array.from(select.selectedOptions).map((o) => o.value);
    select.replaceChildren(...items.map((it) => {
      const o = el('option', { value: String(it.id) }, label(it));
      o.selected = keep.includes(String(it.id));
      return o;
    }));
  }

  // ---- accounts ----

  // The status the admin API gives each account (the words the metrics and
  // sub2apictl use too), and the look of each.
  const STATUS_CLASS = {
    active: 'ok', disabled: 'off', unschedulable: 'off', error: 'bad',
    rate_limited: 'warn', overloaded: 'warn', window_rejected: 'warn',
  };
  const REST_NAME = { rate_limited: '429 rest', overloaded: '529 rest', window_rejected: '5-hour window' };

  function accountState(a) {
    const s = a.state;
    if (!s) return { cls: 'off', text: 'unknown', detail: 'the shared state store could not be read' };
    return {
      cls: STATUS_CLASS[s.status] || 'off',
      text: s.status + (s.status_until ? ' until ' + clock(s.status_until) : ''),
      detail: s.status === 'error' ? a.error_message || 'upstream refused the credential' : undefined,
    };
  }

  function cooldownCell(a, now) {
    const s = a.state || {};
    if (!REST_NAME[s.status] || s.status_until <= now) return el('td', { class: 'muted' }, '—');
    return el('td', {}, REST_NAME[s.status] + ', ' + span(s.status_until - now) + ' left');
  }

  function windowCell(a, now) {
    const w = (a.state || {}).window_5h || {};
    const cls = { allowed: 'ok', allowed_warning: 'warn', rejected: 'bad' }[w.status] || 'off';
    const text = { allowed: 'allowed', allowed_warning: 'near limit', rejected: 'rejected' }[w.status] || 'unknown';
    const td = el('td', {}, badge(cls, text));
    if (w.reset_at && w.reset_at > now) td.append(' ', el('span', { class: 'muted' }, 'resets ' + clock(w.reset_at)));
    return td;
  }

  function loadCell(a) {
    const inFlight = (a.state || {}).in_flight || 0;
    const conc = a.concurrency || 1;
    const ratio = Math.min(1, inFlight / conc);
    const fill = el('span');
    fill.style.width = (ratio * 100).toFixed(1) + '%';
    const bar = el('span', { class: 'bar' + (ratio >= 1 ? ' full' : ratio >= 0.7 ? ' high' : '') }, fill);
    return el('td', {}, el('div', { class: 'load', title: inFlight + ' in flight of ' + conc },
      bar, el('span', {}, inFlight + ' / ' + conc)));
  }

  function renderAccounts(d) {
    const now = d.now;
    const groups = new Map(d.groups.map((g) => [g.id, g.name]));
    const rows = d.accounts.map((a) => {
      const st = accountState(a);
      const stateCell = el('td', {}, badge(st.cls, st.text, st.detail));
      if (st.detail && st.cls === 'bad') stateCell.append(el('span', { class: 'sub-line' }, st.detail));
      return el('tr', { 'data-id': a.id, 'data-state': st.cls },
        el('td', { class: 'num' }, a.id),
        el('td', { class: 'name' }, a.name),
        el('td', {}, a.type, a.egress ? el('span', { class: 'sub-line' }, 'via ' + a.egress) : null),
        stateCell,
        cooldownCell(a, now),
        windowCell(a, now),
        loadCell(a),
        el('td', { class: 'num' }, a.priority),
        el('td', {}, (a.group_ids || []).map((g) => groups.get(g) || '#' + g).join(', ') || '—'),
        el('td', {}, ago((a.state || {}).last_used_at, now)));
    });
    fillBody('accounts', rows, 10, 'No upstream accounts yet.');
    const ready = d.accounts.filter((a) => accountState(a).cls === 'ok').length;
    $('accounts-note').textContent = ready + ' of ' + d.accounts.length + ' active';
  }

  // ---- users and keys ----

  function renderUsers(d) {
    const keyCount = new Map();
    for (const k of d.keys) keyCount.set(k.user_id, (keyCount.get(k.user_id) || 0) + 1);
    const rows = d.users.map((u) => el('tr', { 'data-id': u.id },
      el('td', { class: 'num' }, u.id),
      el('td', { class: 'name' }, u.name),
      el('td', {}, badge(u.status === 'active' ? 'ok' : 'off', u.status)),
      el('td', { class: 'num' + (u.balance_nanousd <= 0 ? ' neg' : ''), title: u.balance_usd + ' USD' },
        usdText(u.balance_usd)),
      el('td', { class: 'num' }, keyCount.get(u.id) || 0),
      el('td', { class: 'num' }, u.concurrency ? u.concurrency + ' at once' : '—')));
    fillBody('users', rows, 6, 'No users yet.');
    $('users-note').textContent = d.users.length + ' users';
  }

  function renderKeys(d) {
    const now = d.now;
    const users = new Map(d.users.map((u) => [u.id, u.name]));
    const groups = new Map(d.groups.map((g) => [g.id, g.name]));
    const rows = d.keys.map((k) => {
      const expired = k.expires_at && k.expires_at <= now;
      const status = k.status !== 'active' ? badge('off', k.status)
        : expired ? badge('warn', 'expired') : badge('ok', 'active');
      const limits = [];
      if (k.concurrency) limits.push(k.concurrency + ' at once');
      if (k.rpm_limit) limits.push(k.rpm_limit + '/min');
      for (const w of ['daily', 'weekly', 'monthly']) {
        if (k[w + '_limit_nanousd']) limits.push(usdText(k[w + '_limit_usd']) + ' ' + w);
      }
      if (k.models) limits.push(k.models.join(', '));
      return el('tr', { 'data-id': k.id },
        el('td', { class: 'num' }, k.id),
        el('td', { class: 'name' }, k.name || '—'),
        el('td', { class: 'mono' }, k.prefix),
        el('td', {}, users.get(k.user_id) || '#' + k.user_id),
        el('td', {}, groups.get(k.group_id) || '#' + k.group_id),
        el('td', {}, status),
        el('td', {}, limits.join(', ') || '—'),
        el('td', { class: 'num' + (k.left_nanousd === 0 ? ' neg' : '') },
          usdText(k.spent_usd) + (k.budget_nanousd ? ' of ' + usdText(k.budget_usd) : '')),
        el('td', {}, k.expires_at ? clock(k.expires_at) : 'never'));
    });
    fillBody('keys', rows, 9, 'No API keys yet.');
    const active = d.keys.filter((k) => k.status === 'active' && !(k.expires_at && k.expires_at <= now));
    $('keys-note').textContent = active.length + ' active of ' + d.keys.length;
  }

  // ---- overview ----

  function renderTiles(d) {
    const now = d.now;
    const ready = d.accounts.filter((a) => accountState(a).cls === 'ok').length;
    const inFlight = d.accounts.reduce((n, a) => n + ((a.state || {}).in_flight || 0), 0);
    const capacity = d.accounts.filter((a) => a.status === 'active')
      .reduce((n, a) => n + (a.concurrency || 0), 0);
    const today = Math.floor(now / DAY) * DAY;
    let requests = 0; let cost = 0; let todayCost = 0;
    for (const r of d.byModel) {
      requests += r.requests;
      cost += r.actual_cost_nanousd;
      if (r.day === today) todayCost += r.actual_cost_nanousd;
    }
    const balance = d.users.reduce((n, u) => n + u.balance_nanousd, 0);
    const tiles = [
      ['Active accounts', ready + ' / ' + d.accounts.length,
        d.accounts.length - ready ? (d.accounts.length - ready) + ' not serving' : 'all serving'],
      ['In flight', intFmt.format(inFlight), 'of ' + intFmt.format(capacity) + ' places'],
      ['Requests, 14 days', intFmt.format(requests), ''],
      ['Charged, 14 days', usdShort(cost), usdShort(todayCost) + ' today (UTC)'],
      ['Users', intFmt.format(d.users.length), 'balances ' + usdShort(balance)],
      ['API keys', intFmt.format(d.keys.length), ''],
    ];
    $('tiles').replaceChildren(...tiles.map(([label, value, detail]) => el('div', { class: 'tile' },
      el('div', { class: 'label' }, label), el('div', { class: 'value' }, value),
      el('div', { class: 'detail' }, detail || ' '))));
  }

  // ---- chart ----

  const METRICS = {
    cost: { title: 'Charged (USD)', value: (r) => r.actual_cost_nanousd, fmt: usdShort },
    requests: { title: 'Requests', value: (r) => r.requests, fmt: countShort },
    tokens: {
      title: 'Tokens',
      value: (r) => r.input_tokens + r.output_tokens + r.cache_creation_tokens + r.cache_read_tokens,
      fmt: countShort,
    },
  };

  // Series of the chosen split, the largest (by charge) first; past
  // MAX_SERIES they are summed as "Other".
  function chartSeries(d) {
    const rows = ui.split === 'model' ? d.byModel : d.byAccount;
    const names = new Map(d.accounts.map((a) => [a.id, a.name]));
    const byKey = new Map();
    for (const r of rows) {
      const key = String(ui.split === 'model' ? r.model : r.account);
      if (!byKey.has(key)) {
        const label = ui.split === 'model' ? r.model : (names.get(r.account) || 'account #' + r.account);
        byKey.set(key, { key, label, rows: [], cost: 0, requests: 0 });
      }
      const s = byKey.get(key);
      s.rows.push(r);
      s.cost += r.actual_cost_nanousd;
      s.requests += r.requests;
    }
    const all = Array.from(byKey.values()).sort((a, b) => b.cost - a.cost || b.requests - a.requests ||
      a.label.localeCompare(b.label));
    const shown = all.length > MAX_SERIES + 1 ? all.slice(0, MAX_SERIES) : all;
    shown.forEach((s, i) => { s.color = COLORS[i % COLORS.length]; });
    if (shown.length < all.length) {
      const rest = all.slice(shown.length);
      shown.push({
        key: '*', label: 'Other (' + rest.length + ')', color: OTHER_COLOR,
        rows: rest.flatMap((s) => s.rows), cost: rest.reduce((n, s) => n + s.cost, 0),
        requests: rest.reduce((n, s) => n + s.requests, 0),
      });
    }
    return shown;
  }

  function niceStep(max, ticks) {
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  }

  function renderChart(d) {
    const box = $('chart');
    const metric = METRICS[ui.metric];
    const series = chartSeries(d);
    const days = Array.from({ length: DAYS }, (_, i) => d.from + i * DAY);
    const values = series.map((s) => {
      const perDay = new Map();
      for (const r of s.rows) perDay.set(r.day, (perDay.get(r.day) || 0) + metric.value(r));
      return days.map((day) => perDay.get(day) || 0);
    });
    const totals = days.map((_, i) => values.reduce((n, v) => n + v[i], 0));
    const max = Math.max(0, ...totals);

    const width = Math.max(box.clientWidth, 480);
    const height = 300;
    const m = { left: 72, right: 16, top: 14, bottom: 46 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const root = svg('svg', {
      viewBox: '0 0 ' + width + ' ' + height, role: 'img',
      'aria-label': metric.title + ' per day, ' + (ui.split === 'model' ? 'by model' : 'by account'),
    });

    const step = max > 0 ? niceStep(max, 5) : 1;
    const top = max > 0 ? Math.ceil(max / step) * step : 5;
    const y = (v) => m.top + plotH - (v / top) * plotH;
    for (let v = 0; v <= top + step / 2; v += step) {
      root.append(svg('line', { class: 'grid', x1: m.left, x2: width - m.right, y1: y(v), y2: y(v) }));
      root.append(svg('text', { x: m.left - 8, y: y(v) + 4, 'text-anchor': 'end' },
        max > 0 ? metric.fmt(v) : ''));
    }
    root.append(svg('line', { class: 'axis', x1: m.left, x2: width - m.right, y1: y(0), y2: y(0) }));
    root.append(svg('line', { class: 'axis', x1: m.left, x2: m.left, y1: m.top, y2: y(0) }));
    root.append(svg('text', {
      class: 'title', transform: 'rotate(-90)', x: -(m.top + plotH / 2), y: 14, 'text-anchor': 'middle',
    }, metric.title));
    root.append(svg('text', { class: 'title', x: m.left + plotW / 2, y: height - 6, 'text-anchor': 'middle' },
      'Day (UTC)'));

    const slot = plotW / DAYS;
    const barW = Math.max(4, Math.min(44, slot * 0.62));
    const labelEvery = slot < 38 ? 2 : 1;
    days.forEach((day, i) => {
      const x = m.left + slot * i + (slot - barW) / 2;
      if (i % labelEvery === 0 || i === DAYS - 1) {
        root.append(svg('text', { x: x + barW / 2, y: y(0) + 16, 'text-anchor': 'middle' },
          dateText(day).slice(5)));
      }
      let base = 0;
      series.forEach((s, j) => {
        const v = values[j][i];
        if (!v) return;
        const rect = svg('rect', {
          class: 'chart-bar', x, width: barW, y: y(base + v), height: Math.max(1, y(base) - y(base + v)),
          fill: s.color, 'data-day': dateText(day), 'data-series': s.key, 'data-value': v,
        });
        rect.append(svg('title', {}, dateText(day) + ' · ' + s.label + ': ' + metric.fmt(v)));
        root.append(rect);
        base += v;
      });
    });
    if (max === 0) {
      root.append(svg('text', { class: 'empty', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle' },
        'No billed requests in the last 14 days'));
    }
    box.replaceChildren(root);

    $('legend').replaceChildren(...series.map((s, j) => {
      const swatch = el('span', { class: 'swatch' });
      swatch.style.background = s.color;
      const sum = values[j].reduce((n, v) => n + v, 0);
      return el('li', { 'data-series': s.key }, swatch, el('span', {}, s.label),
        el('span', { class: 'amount' }, metric.fmt(sum)));
    }));
  }

  // ---- loading ----

  async function load() {
    if (loading) {
      reload = true;
      return;
    }
    loading = true;
    $('refresh').disabled = true;
    try {
      const today = Math.floor(Date.now() / 1000 / DAY) * DAY;
      const from = today - (DAYS - 1) * DAY;
      const summary = (split) => 'usage/summary?by=day&split=' + split + '&from=' + from;
      const [accounts, users, keys, groups, byModel, byAccount] = await Promise.all([
        api('GET', 'accounts'), api('GET', 'users'), api('GET', 'keys'), api('GET', 'groups'),
        api('GET', summary('model')), api('GET', summary('account'))]);
      data = {
        now: accounts.serverNow, from, accounts: accounts.data, users: users.data, keys: keys.data,
        groups: groups.data, byModel: byModel.data, byAccount: byAccount.data,
      };
      render();
      $('app-error').hidden = true;
      $('updated').textContent = 'updated ' + clock(Date.now() / 1000, true);
    } catch (err) {
      if (err.status === 401) {
        signOut('The admin token is no longer accepted (401). Sign in again.');
      } else {
        $('app-error').textContent = 'Could not load: ' + explain(err);
        $('app-error').hidden = false;
      }
    } finally {
      loading = false;
      $('refresh').disabled = false;
      const again = reload && auth;
      reload = false;
      if (again) load();
    }
  }

  function render() {
    if (!data) return;
    renderTiles(data);
    renderAccounts(data);
    renderChart(data);
    renderUsers(data);
    renderKeys(data);
    const userLabel = (u) => u.name + ' (#' + u.id + ')';
    fillSelect($('key-user'), data.users.filter((u) => u.status === 'active'), userLabel);
    fillSelect($('balance-user'), data.users, (u) => userLabel(u) + ' · ' + usdText(u.balance_usd));
    fillSelect($('key-group'), data.groups, (g) => g.name + ' (#' + g.id + ')');
    fillSelect($('account-groups'), data.groups, (g) => g.name + ' (#' + g.id + ')');
  }

  // ---- session ----

  function showApp(on) {
    $('login').hidden = on;
    $('app').hidden = !on;
    $('session').hidden = !on;
  }

  async function signIn(token, base, remembered) {
    auth = { token, base: normalBase(base) };
    const button = $('signin');
    button.disabled = true;
    $('login-error').hidden = true;
    try {
      await api('GET', 'groups'); // one call decides whether the token is good
    } catch (err) {
      const msg = explain(err);
      auth = null;
      session.removeItem('s2a.token');
      session.removeItem('s2a.base');
      showApp(false);
      $('login-error').textContent = remembered ? 'Signed out: ' + msg : msg;
      $('login-error').hidden = false;
      return;
    } finally {
      button.disabled = false;
    }
    session.setItem('s2a.token', token);
    session.setItem('s2a.base', auth.base);
    $('token').value = '';
    $('api-label').textContent = auth.base;
    showApp(true);
    await load();
  }

  function signOut(message) {
    auth = null;
    data = null;
    session.removeItem('s2a.token');
    session.removeItem('s2a.base');
    hideSecret();
    showApp(false);
    $('login-error').textContent = message || '';
    $('login-error').hidden = !message;
  }

  // ---- forms ----

  function formMessage(form, cls, text) {
    const p = form.querySelector('.form-msg');
    p.className = 'form-msg ' + cls;
    p.textContent = text;
  }

  // Runs a form's action with its button disabled; reports its outcome.
  function onSubmit(form, action) {
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      formMessage(form, '', '');
      try {
        formMessage(form, 'ok', await action());
        await load();
      } catch (err) {
        if (err.status === 401) signOut('The admin token is no longer accepted (401). Sign in again.');
        else formMessage(form, 'bad', explain(err));
      } finally {
        button.disabled = false;
      }
    });
  }

  function showSecret(owner, key) {
    $('secret-owner').textContent = owner;
    $('secret-value').value = key;
    $('secret').hidden = false;
    $('secret').scrollIntoView({ block: 'center' });
    $('secret-value').select();
  }

  function hideSecret() {
    $('secret-value').value = '';
    $('secret-owner').textContent = '';
    $('secret').hidden = true;
  }

  onSubmit($('key-form'), async () => {
    const body = {
      user_id: Number($('key-user').value), group_id: Number($('key-group').value),
      name: $('key-name').value.trim(),
    };
    if ($('key-expires').value) body.expires_at = Math.floor(Date.parse($('key-expires').value + 'T23:59:59') / 1000);
    if ($('key-budget').value.trim()) body.budget_usd = $('key-budget').value.trim();
    const models = $('key-models').value.split(',').map((m) => m.trim()).filter((m) => m);
    if (models.length) body.models = models;
    const key = await api('POST', 'keys', body);
    const user = data.users.find((u) => u.id === key.user_id);
    showSecret((key.name ? key.name + ', ' : '') + (user ? user.name : 'user #' + key.user_id), key.key);
    $('key-name').value = '';
    $('key-expires').value = '';
    $('key-budget').value = '';
    $('key-models').value = '';
    return 'Key #' + key.id + ' created.';
  });

  onSubmit($('balance-form'), async () => {
    const amount = $('balance-amount').value.trim();
    const body = { add_balance_usd: amount, actor: 'dashboard' };
    if ($('balance-reason').value.trim()) body.reason = $('balance-reason').value.trim();
    const user = await api('PATCH', 'users/' + Number($('balance-user').value), body);
    $('balance-amount').value = '';
    $('balance-reason').value = '';
    return 'Balance of ' + user.name + ' is now ' + usdText(user.balance_usd) + '.';
  });

  onSubmit($('account-form'), async () => {
    const credential = $('account-credential');
    const body = {
      name: $('account-name').value.trim(), type: $('account-type').value,
      credential: credential.value, endpoint: $('account-endpoint').value.trim(),
      priority: Number($('account-priority').value), concurrency: Number($('account-concurrency').value),
      group_ids: Array.from($('account-groups').selectedOptions).map((o) => Number(o.value)),
    };
    if ($('account-egress').value.trim()) body.egress = $('account-egress').value.trim();
    if ($('account-region').value.trim()) body.region = $('account-region').value.trim();
    if (credential.value.trim().startsWith('{')) {
      // a service-account key file or a Bedrock key pair, pasted
      try {
        body.credential = JSON.parse(credential.value);
      } catch (e) {
        throw new Error('The credential starts as JSON but does not parse: ' + e.message);
      }
    }
    credential.value = ''; // sent once, kept nowhere
    $('account-egress').value = '';
    $('account-region').value = '';
    const acct = await api('POST', 'accounts', body);
    $('account-name').value = '';
    return 'Account #' + acct.id + ' (' + acct.name + ') added.';
  });

  // ---- wiring ----

  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn($('token').value, $('base').value, false);
  });
  $('logout').addEventListener('click', () => signOut(''));
  $('refresh').addEventListener('click', () => load());
  $('secret-done').addEventListener('click', hideSecret);
  $('secret-copy').addEventListener('click', async () => {
    const input = $('secret-value');
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      $('secret-copy').textContent = 'Copied';
    } catch (e) {
      $('secret-copy').textContent = 'Press Ctrl+C';
    }
  });
  for (const b of document.querySelectorAll('#split button')) {
    b.addEventListener('click', () => {
      ui.split = b.dataset.split;
      for (const o of document.querySelectorAll('#split button')) o.setAttribute('aria-pressed', String(o === b));
      if (data) renderChart(data);
    });
  }
  for (const b of document.querySelectorAll('#metric button')) {
    b.addEventListener('click', () => {
      ui.metric = b.dataset.metric;
      for (const o of document.querySelectorAll('#metric button')) o.setAttribute('aria-pressed', String(o === b));
      if (data) renderChart(data);
    });
  }
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (data) renderChart(data); }, 150);
  });
  setInterval(() => {
    if (auth && data && !document.hidden) load();
  }, REFRESH_MS);

  $('base').value = session.getItem('s2a.base') || defaultBase();
  const saved = session.getItem('s2a.token');
  if (saved) signIn(saved, $('base').value, true);
})();
