// Drives the admin page (SetHandler sub2api-dashboard) in headless Chromium
// and prints what it saw as one JSON line; tests/integration/test_dashboard.py
// judges it. Usage: node dashboard.mjs '<json plan>'
//   plan: {url, opsUrl, token, chromium, screenshot,
//          key: {user_id, group_id, name}, balance: {user_id, amount, reason},
//          account: {name, credential, endpoint, group_id}}
import { chromium } from 'playwright-core';

const plan = JSON.parse(process.argv[2] || '{}');
const out = { console: [], pageErrors: [], csp: [], steps: [] };
let phase = 'start';

// The chart's bars as drawn: [{day, series, value, height (as laid out), drawn (as set)}].
const bars = (page) => page.$$eval('#chart rect.chart-bar', (rs) => rs.map((r) => ({
  day: r.dataset.day, series: r.dataset.series, value: Number(r.dataset.value),
  height: r.getBoundingClientRect().height, drawn: Number(r.getAttribute('height')),
})));

async function chart(page, split, metric) {
  await page.click(`#split button[data-split="${split}"]`);
  await page.click(`#metric button[data-metric="${metric}"]`);
  return {
    bars: await bars(page),
    legend: await page.$$eval('#legend li', (ls) => ls.map((l) => l.dataset.series)),
    titles: await page.$$eval('#chart text.title', (ts) => ts.map((t) => t.textContent)),
    ticks: await page.$$eval('#chart text:not(.title)', (ts) => ts.map((t) => t.textContent)),
  };
}

const storage = (page) => page.evaluate(() => JSON.stringify({
  session: Object.fromEntries(Object.entries(sessionStorage)),
  local: Object.fromEntries(Object.entries(localStorage)),
}));

async function formDone(page, form) {
  const msg = page.locator(`#${form} .form-msg`);
  await page.waitForFunction((id) => {
    const p = document.querySelector(`#${id} .form-msg`);
    return p.classList.contains('ok') || p.classList.contains('bad');
  }, form);
  return { cls: await msg.getAttribute('class'), text: await msg.textContent() };
}

async function run(browser) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.exposeBinding('__s2aViolation', (_src, v) => out.csp.push({ phase, ...v }));
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__s2aViolation({
      directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample,
    }));
  });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') {
      out.console.push({ phase, type: m.type(), text: m.text() });
    }
  });
  page.on('pageerror', (e) => out.pageErrors.push({ phase, text: String(e) }));

  phase = 'load';
  const res = await page.goto(plan.url);
  out.headers = res.headers();
  out.status = res.status();
  out.baseField = await page.inputValue('#base');

  phase = 'wrong-token';
  await page.fill('#token', 'wrong-' + plan.token);
  await page.click('#signin');
  await page.waitForSelector('#login-error:not([hidden])');
  out.wrongToken = {
    error: await page.textContent('#login-error'),
    appHidden: await page.isHidden('#app'),
    storage: await storage(page),
  };

  phase = 'login';
  await page.fill('#token', plan.token);
  await page.click('#signin');
  await page.waitForSelector('#accounts tbody tr[data-id]');
  await page.waitForSelector('#chart rect.chart-bar');
  out.loginErrorHidden = await page.isHidden('#login-error');
  out.apiLabel = await page.textContent('#api-label');
  out.accounts = await page.$$eval('#accounts tbody tr[data-id]', (rows) => rows.map((r) => ({
    id: Number(r.dataset.id), state: r.dataset.state,
    cells: Array.from(r.cells, (c) => c.textContent.trim()),
  })));
  out.users = await page.$$eval('#users tbody tr[data-id]', (rows) => rows.map((r) => ({
    id: Number(r.dataset.id), cells: Array.from(r.cells, (c) => c.textContent.trim()),
  })));
  out.tiles = await page.$$eval('#tiles .tile', (ts) => ts.map((t) => t.textContent));
  out.charts = {
    modelCost: await chart(page, 'model', 'cost'),
    modelRequests: await chart(page, 'model', 'requests'),
    accountRequests: await chart(page, 'account', 'requests'),
    accountCost: await chart(page, 'account', 'cost'),
  };

  phase = 'key';
  await page.selectOption('#key-user', String(plan.key.user_id));
  await page.selectOption('#key-group', String(plan.key.group_id));
  await page.fill('#key-name', plan.key.name);
  await page.fill('#key-budget', plan.key.budget);
  await page.fill('#key-models', plan.key.models);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#secret:not([hidden])');
  out.key = {
    secret: await page.inputValue('#secret-value'),
    owner: await page.textContent('#secret-owner'),
    message: await formDone(page, 'key-form'),
    storage: await storage(page),
  };
  await page.waitForSelector(`#keys tbody tr:has-text("${plan.key.name}")`);
  out.key.row = await page.$eval(`#keys tbody tr:has-text("${plan.key.name}")`,
    (tr) => Array.from(tr.cells).map((c) => c.textContent));
  await page.click('#secret-done');
  out.key.hiddenAfterDone = await page.isHidden('#secret');
  out.key.valueAfterDone = await page.inputValue('#secret-value');

  phase = 'balance';
  await page.selectOption('#balance-user', String(plan.balance.user_id));
  await page.fill('#balance-amount', plan.balance.amount);
  await page.fill('#balance-reason', plan.balance.reason);
  await page.click('#balance-form button[type=submit]');
  out.balance = { message: await formDone(page, 'balance-form') };

  phase = 'account';
  await page.fill('#account-name', plan.account.name);
  await page.fill('#account-credential', plan.account.credential);
  await page.fill('#account-endpoint', plan.account.endpoint);
  await page.selectOption('#account-groups', [String(plan.account.group_id)]);
  await page.click('#account-form button[type=submit]');
  out.account = { message: await formDone(page, 'account-form') };
  await page.waitForSelector(`#accounts tbody tr:has-text("${plan.account.name}")`);
  out.account.credentialField = await page.inputValue('#account-credential');

  phase = 'cloud-account';
  await page.fill('#account-name', plan.cloudAccount.name);
  await page.selectOption('#account-type', plan.cloudAccount.type);
  await page.fill('#account-credential', plan.cloudAccount.credential);
  await page.fill('#account-region', plan.cloudAccount.region);
  await page.fill('#account-endpoint', plan.cloudAccount.endpoint);
  await page.selectOption('#account-groups', [String(plan.cloudAccount.group_id)]);
  await page.click('#account-form button[type=submit]');
  out.cloudAccount = { message: await formDone(page, 'account-form') };
  await page.waitForSelector(`#accounts tbody tr:has-text("${plan.cloudAccount.name}")`);

  phase = 'screenshot';
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: plan.screenshot, fullPage: true });

  phase = 'reload';
  await page.reload();
  await page.waitForSelector('#accounts tbody tr[data-id]');
  out.afterReload = {
    secretHidden: await page.isHidden('#secret'),
    secretValue: await page.inputValue('#secret-value'),
    html: await page.content(),
  };

  phase = 'logout';
  await page.click('#logout');
  await page.waitForSelector('#login:not([hidden])');
  out.afterLogout = { storage: await storage(page), appHidden: await page.isHidden('#app') };

  phase = 'ops';
  await page.goto(plan.opsUrl);
  out.ops = { baseField: await page.inputValue('#base') };
  await page.fill('#token', plan.token);
  await page.click('#signin');
  await page.waitForSelector('#accounts tbody tr[data-id]');
  out.ops.apiLabel = await page.textContent('#api-label');
  phase = 'done';
  await context.close();
}

const browser = await chromium.launch({
  executablePath: plan.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  await run(browser);
  out.ok = true;
} catch (err) {
  out.ok = false;
  out.error = `${phase}: ${err.stack || err}`;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
