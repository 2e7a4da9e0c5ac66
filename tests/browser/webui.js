// webui.js: drives the reference web UI (deploy/www) in Debian's chromium with
// playwright-core, against a real chatgw stack that webui.test started with fake-claude.
//
// Environment: CHATGW_WEB (page URL), CHATGW_TOKEN, CHATGW_PROJECT (a project path),
// CHATGW_ARTIFACTS (screenshot dir), CHATGW_CHROMIUM (default /usr/bin/chromium),
// NODE_PATH (where playwright-core is installed).
// Prints one JSON line per check: {"ok": bool, "name": "...", "diag": "..."}; webui.test
// turns them into TAP.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const WEB = process.env.CHATGW_WEB;
const TOKEN = process.env.CHATGW_TOKEN;
const PROJECT = process.env.CHATGW_PROJECT;
const ARTIFACTS = process.env.CHATGW_ARTIFACTS;
const T = 60000; // a guard against a hang on every wait, never a figure under test

let failed = 0;
function check(ok, name, diag) {
  if (!ok) failed++;
  console.log(JSON.stringify({ ok: !!ok, name, diag: ok ? undefined : String(diag === undefined ? '' : diag) }));
}

async function shot(page, name) {
  const file = path.join(ARTIFACTS, name + '.png');
  await page.screenshot({ path: file, fullPage: false });
  console.log(JSON.stringify({ artifact: file }));
}

async function api(method, p, body) {
  const r = await fetch(new URL('api' + p, WEB), {
    method,
    headers: { Authorization: 'Bearer ' + TOKEN, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return r.json();
}

async function history(sid) {
  let out = [];
  let after = 0;
  for (;;) {
    const r = await api('GET', '/sessions/' + sid + '/messages?limit=1000&afterSeq=' + after);
    out = out.concat(r.messages);
    if (!r.hasMore || !r.messages.length) return out;
    after = r.messages[r.messages.length - 1].seq;
  }
}

// The DOM's persisted messages: [[seq, kind], ...] in page order.
function domMessages(page) {
  return page.$$eval('#messages li[data-seq]', (lis) => lis.map((li) => [Number(li.dataset.seq), li.dataset.kind]));
}

async function sameAsHistory(page, sid, what) {
  const hist = (await history(sid)).map((m) => [m.seq, m.kind]);
  const dom = await domMessages(page);
  const seqs = dom.map((d) => d[0]);
  check(new Set(seqs).size === seqs.length, what + ': no message shown twice', JSON.stringify(seqs));
  check(JSON.stringify(dom) === JSON.stringify(hist), what + ': the page shows exactly the history (seq and kind)',
    'dom:     ' + JSON.stringify(dom) + '\nhistory: ' + JSON.stringify(hist));
}

async function send(page, text) {
  await page.fill('#prompt', text);
  await page.click('#send');
}

async function runState(page, want) {
  await page.waitForSelector('#run-state[data-state="' + want + '"]', { timeout: T });
}

// CHATGW_ONLY=truncated runs only that step (webui.test starts a stack with a tiny live
// buffer for it); by default every other step runs.
const ONLY = process.env.CHATGW_ONLY || '';
async function step(name, fn) {
  const always = ['login', 'create a session', 'logout'];
  if (!always.includes(name) && (ONLY ? name !== ONLY : name === 'truncated')) return;
  try {
    await fn();
  } catch (e) {
    check(false, name, e && e.stack ? e.stack : e);
  }
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cgw-chromium-'));
  // A fresh profile (--user-data-dir) every run; nothing may reach out of the loopback.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHATGW_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 800 },
  });
  const page = context.pages()[0] || await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const cspErrors = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });
  let sid = null;

  await step('login', async () => {
    await page.goto(WEB);
    await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    await shot(page, '01-login');
    await page.fill('#token-input', 'cgw_wrong_token');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error').textContent !== '', null, { timeout: T });
    check(await page.isVisible('#login-form'), 'a wrong token keeps the login form up');
    await page.fill('#token-input', TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#app', { state: 'visible', timeout: T });
    check(true, 'logs in with the token');
  });

  await step('create a session', async () => {
    await page.click('#new-session summary');
    await page.selectOption('#ns-provider', 'claude');
    await page.fill('#ns-path', PROJECT);
    await page.fill('#ns-name', 'browser <b>test</b>');
    await page.click('#new-session-form button[type=submit]');
    await page.waitForFunction(() => /^#\/s\//.test(location.hash), null, { timeout: T });
    sid = decodeURIComponent((await page.evaluate(() => location.hash)).slice(4));
    await page.waitForSelector('#session-list a[data-sid="' + sid + '"]', { timeout: T });
    const title = await page.textContent('#session-list a[data-sid="' + sid + '"] .session-title');
    check(title === 'browser <b>test</b>', 'the new session is in the sidebar, its name as text', title);
    const s = await api('GET', '/sessions/' + sid);
    check(s.session && s.session.projectPath === PROJECT, 'the server has the session', JSON.stringify(s));
  });

  await step('streamed answer', async () => {
    await send(page, 'scenario:slow n=12 delay=0.25');
    await page.waitForSelector('#messages li.text.user[data-seq]', { timeout: T });
    await page.waitForFunction(() => {
      const li = document.querySelector('#messages li.streaming');
      return li && /tick2 /.test(li.textContent);
    }, null, { timeout: T });
    check(true, 'stream_delta text shows up live while the run runs');
    check(await page.isVisible('#abort'), 'the abort button shows while running');
    await shot(page, '02-streaming');
    await runState(page, 'done');
    const finalText = await page.textContent('#messages li.text.assistant[data-seq] .body');
    check(/^tick0 .*tick11 $/.test(finalText), 'the final text replaces the streamed one', finalText);
    check((await page.$$('#messages li.streaming')).length === 0 && (await page.$$('#messages li.text.assistant')).length === 1,
      'no streaming leftover, one assistant message');
    check(!(await page.isVisible('#abort')), 'no abort button once done');
    await sameAsHistory(page, sid, 'after a streamed run');
  });

  await step('permission', async () => {
    await send(page, 'scenario:permission');
    await page.waitForSelector('#messages li.permission .perm-allow', { timeout: T });
    const card = await page.textContent('#messages li.permission');
    check(/Bash/.test(card) && /touch fake_tool_ran\.txt/.test(card), 'the permission card names the tool and its input', card);
    await shot(page, '03-permission');
    await page.click('#messages li.permission .perm-allow');
    await page.waitForSelector('#messages li.tool-result[data-seq]', { timeout: T });
    await runState(page, 'done');
    const res = await page.textContent('#messages li.tool-result');
    check(/Bash completed/.test(res), 'the tool result shows after allowing', res);
    check((await page.$$('#messages li.permission .perm-actions')).length === 0, 'the answered card has no buttons left');
    check(fs.existsSync(path.join(PROJECT, 'fake_tool_ran.txt')), 'the tool ran in the project');
    await shot(page, '04-tool-result');
    await sameAsHistory(page, sid, 'after a permission run');
  });

  await step('abort', async () => {
    await send(page, 'scenario:slow n=300 delay=0.2');
    await page.waitForFunction(() => {
      const li = document.querySelector('#messages li.streaming');
      return li && /tick1 /.test(li.textContent);
    }, null, { timeout: T });
    await page.click('#abort');
    await runState(page, 'aborted');
    check(true, 'abort ends the run; the page says aborted');
    const last = await page.$eval('#messages li[data-seq]:last-child', (li) => [li.dataset.kind, li.className]);
    check(last[0] === 'complete' && /aborted/.test(last[1]), 'the last message is an aborted complete', last);
    await shot(page, '05-aborted');
    await sameAsHistory(page, sid, 'after abort');
  });

  await step('reload mid-run', async () => {
    await send(page, 'scenario:slow n=24 delay=0.2');
    await page.waitForFunction(() => {
      const li = document.querySelector('#messages li.streaming');
      return li && /tick3 /.test(li.textContent);
    }, null, { timeout: T });
    await page.reload();
    await page.waitForSelector('#app', { state: 'visible', timeout: T });
    await page.waitForFunction(() => {
      const li = document.querySelector('#messages li.streaming');
      return li && /^tick0 tick1 tick2 tick3 /.test(li.querySelector('.body').textContent);
    }, null, { timeout: T });
    check(true, 'after a reload the running answer is rebuilt from the start');
    check((await page.textContent('#run-state')) === 'running', 'after a reload the run shows as running');
    await runState(page, 'done');
    const texts = await page.$$eval('#messages li.text.assistant[data-seq] .body', (b) => b.map((x) => x.textContent));
    const lastText = texts[texts.length - 1];
    const want = Array.from({ length: 24 }, (_, k) => 'tick' + k + ' ').join('');
    check(lastText === want, 'the answer is complete after the reload', lastText);
    await sameAsHistory(page, sid, 'after a reload mid-run');
  });

  await step('network loss mid-run', async () => {
    await send(page, 'scenario:slow n=16 delay=0.2');
    await page.waitForFunction(() => {
      const li = document.querySelector('#messages li.streaming');
      return li && /tick1 /.test(li.textContent);
    }, null, { timeout: T });
    await context.setOffline(true);
    await page.waitForFunction(() => document.getElementById('conn').textContent !== '', null, { timeout: T });
    check(true, 'losing the network shows a connection problem');
    await context.setOffline(false);
    await runState(page, 'done');
    const texts = await page.$$eval('#messages li.text.assistant[data-seq] .body', (b) => b.map((x) => x.textContent));
    const want = Array.from({ length: 16 }, (_, k) => 'tick' + k + ' ').join('');
    check(texts[texts.length - 1] === want, 'the answer is complete after the network came back', texts[texts.length - 1]);
    await page.waitForFunction(() => document.getElementById('conn').textContent === '', null, { timeout: T });
    await sameAsHistory(page, sid, 'after a network loss');
  });

  let page2 = null;
  await step('two tabs', async () => {
    page2 = await context.newPage();
    page2.on('pageerror', (e) => pageErrors.push(String(e)));
    await page2.goto(WEB + '#/s/' + encodeURIComponent(sid));
    await page2.waitForSelector('#app', { state: 'visible', timeout: T });
    await runState(page2, 'done');
    await send(page, 'scenario:slow n=10 delay=0.2');
    for (const [p, name] of [[page, 'first'], [page2, 'second']]) {
      await p.waitForFunction(() => {
        const li = document.querySelector('#messages li.streaming');
        return li && /tick1 /.test(li.textContent);
      }, null, { timeout: T });
      check(true, 'the ' + name + ' tab follows the run live');
    }
    await shot(page2, '06-second-tab');
    await runState(page, 'done');
    await runState(page2, 'done');
    await sameAsHistory(page, sid, 'first tab');
    await sameAsHistory(page2, sid, 'second tab');

    // A permission answered in one tab leaves the other tab's card answered too.
    await send(page2, 'scenario:permission command="touch second.txt"');
    await page.waitForSelector('#messages li.permission:not(.resolved) .perm-allow', { timeout: T });
    await page2.waitForSelector('#messages li.permission:not(.resolved) .perm-allow', { timeout: T });
    await page2.click('#messages li.permission:not(.resolved) .perm-deny');
    await runState(page, 'done');
    await runState(page2, 'done');
    check((await page.$$('#messages li.permission:not(.resolved)')).length === 0,
      'a permission answered in the other tab is closed here');
    const outcomes = await page.$$eval('#messages li.permission .perm-outcome', (l) => l.map((x) => x.textContent));
    check(outcomes[outcomes.length - 1] === 'Denied', 'and says how it was answered', JSON.stringify(outcomes));
    const err = await page.$$eval('#messages li.tool-result.error', (l) => l.length);
    check(err >= 1, 'the denied tool result is shown as an error', err);
    await sameAsHistory(page, sid, 'first tab after the second answered');
  });

  await step('rename, archive, XSS', async () => {
    await page.fill('#session-name', 'renamed in tab one');
    await page.press('#session-name', 'Enter');
    await page2.waitForFunction((sid) => {
      const a = document.querySelector('#session-list a[data-sid="' + sid + '"] .session-title');
      return a && a.textContent === 'renamed in tab one';
    }, sid, { timeout: T });
    check(true, 'a rename shows in the other tab through the session feed');
    await send(page, '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>');
    await runState(page, 'done');
    await page.waitForSelector('#messages li.text.assistant:last-child', { timeout: T }).catch(() => {});
    const users = await page.$$eval('#messages li.text.user .body', (b) => b.map((x) => x.textContent));
    check(users[users.length - 1].startsWith('<img src=x'), 'markup in a prompt is shown as text', users[users.length - 1]);
    check((await page.evaluate(() => window.__xss)) === undefined && (await page.$$('#messages img, #messages script')).length === 0,
      'markup in a prompt never runs');
    await page.click('#archive');
    await page2.waitForFunction((sid) => !document.querySelector('#session-list a[data-sid="' + sid + '"]'), sid, { timeout: T });
    check(true, 'archiving hides the session from the other tab\'s list');
    const s = await api('GET', '/sessions/' + sid);
    check(s.session.archived === true && s.session.name === 'renamed in tab one', 'the server has the rename and the archive', JSON.stringify(s));
    await page.click('#archive'); // unarchive again for the screenshot
    await page.waitForSelector('#session-list a[data-sid="' + sid + '"]', { timeout: T });
    await shot(page, '07-final');
    await page.setViewportSize({ width: 420, height: 800 });
    await shot(page, '08-narrow');
  });

  await step('truncated', async () => {
    // The page loses the network while a run publishes far more events than the live
    // buffer keeps: its next poll gets truncated:true, it fills the hole from history
    // and still ends with exactly the history.
    const seen = { truncated: false, holeFill: false };
    let offline = false;
    page.on('response', async (r) => {
      if (!r.url().includes('/chat/subscribe')) return;
      try {
        const body = await r.json();
        if ((body.frames || []).some((f) => f.kind === 'chat_subscribed' && f.truncated)) seen.truncated = true;
      } catch (e) { /* an aborted poll */ }
    });
    page.on('request', (r) => {
      if (!offline && /\/messages\?.*afterSeq=[1-9]/.test(r.url())) seen.holeFill = true;
    });
    await send(page, 'scenario:slow n=400 delay=0.01');
    await page.waitForFunction(() => {
      const li = document.querySelector('#messages li.streaming');
      return li && /tick1 /.test(li.textContent);
    }, null, { timeout: T });
    offline = true;
    await context.setOffline(true);
    // Offline until the run has ended (a bounded poll on that state, not a sleep).
    for (let i = 0; i < 600; i++) {
      const s = await api('GET', '/sessions/' + sid);
      if (!s.session.isProcessing) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    offline = false;
    await context.setOffline(false);
    await runState(page, 'done');
    check(seen.truncated, 'the poll after the network came back was truncated');
    check(seen.holeFill, 'the page filled the hole from history');
    const texts = await page.$$eval('#messages li.text.assistant[data-seq] .body', (b) => b.map((x) => x.textContent));
    const want = Array.from({ length: 400 }, (_, k) => 'tick' + k + ' ').join('');
    check(texts[texts.length - 1] === want, 'the whole answer is there', (texts[texts.length - 1] || '').slice(0, 200));
    check((await page.$$('#messages li.streaming, #messages li.unsaved')).length === 0, 'no partial answer left over');
    await shot(page, '09-truncated');
    await sameAsHistory(page, sid, 'after a truncated poll');
  });

  await step('logout', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form', { state: 'visible', timeout: T });
    check((await page.evaluate(() => localStorage.getItem('chatgw.token'))) === null, 'logout forgets the token');
  });

  check(pageErrors.length === 0, 'no script errors in the pages', pageErrors.join('\n'));
  check(cspErrors.length === 0, 'nothing the page does breaks its Content-Security-Policy', cspErrors.join('\n'));
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  check(false, 'the browser script ran', e && e.stack ? e.stack : e);
  process.exit(1);
});
