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

// Counts a page's subscriptions: GET /chat/stream requests and waiting long-polls.
function watchTransport(p) {
  const n = { streams: 0, waitingPolls: 0 };
  p.on('request', (r) => {
    if (r.url().includes('/chat/stream?')) n.streams++;
    if (r.url().includes('/chat/subscribe') && r.method() === 'POST' && (JSON.parse(r.postData() || '{}').waitMs || 0) > 0) n.waitingPolls++;
  });
  return n;
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
  // How the page subscribes: event streams opened, long-polls that wait (waitMs > 0).
  const transport = watchTransport(page);
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
    check(transport.streams > 0 && transport.waitingPolls === 0 &&
      (await page.getAttribute('#conn', 'data-transport')) === 'stream',
    'the page follows the run through GET /chat/stream (EventSource), not long-polls', JSON.stringify(transport));
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
    check((await page.getAttribute('#conn', 'data-transport')) === 'stream', 'after the network loss the page streams again');
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

  // ---- Markdown, tool cards, paging, search (each in a session of its own) ----------
  async function openNewSession(name) {
    const r = await api('POST', '/sessions', { provider: 'claude', projectPath: PROJECT, name });
    const id = r.session.id;
    await page.evaluate((h) => { location.hash = h; }, '#/s/' + encodeURIComponent(id));
    await page.waitForSelector('#session-list a[data-sid="' + id + '"][aria-current="page"]', { timeout: T });
    await runState(page, 'idle');
    return id;
  }

  // Waits (bounded) until the run's complete is in history too: it is written right
  // after it is published.
  async function historyComplete(id) {
    for (let i = 0; i < 300; i++) {
      const h = await history(id);
      if (h.length && h[h.length - 1].kind === 'complete') return h;
      await new Promise((res) => setTimeout(res, 100));
    }
    throw new Error('the complete of session ' + id + ' never reached history');
  }

  await step('markdown', async () => {
    await page.setViewportSize({ width: 1200, height: 800 });
    const mid = await openNewSession('markdown demo');
    await send(page, 'scenario:replay file=webui_markdown.jsonl delay=0.03');
    await page.waitForSelector('#messages li.streaming .body h1', { timeout: T });
    check(true, 'a streaming answer is rendered as Markdown while it grows');
    await shot(page, '10-markdown-streaming');
    await runState(page, 'done');
    const md = '#messages li.text.assistant[data-seq] .body.markdown';
    await page.waitForSelector(md, { timeout: T });
    const shape = await page.$eval(md, (b) => ({
      h1: (b.querySelector('h1') || {}).textContent,
      h2: (b.querySelector('h2') || {}).textContent,
      ol: b.querySelectorAll('ol > li').length,
      ul: b.querySelectorAll('ol ul > li').length,
      strong: (b.querySelector('p strong') || {}).textContent,
      th: [...b.querySelectorAll('table th')].map((x) => x.textContent),
      td: [...b.querySelectorAll('table td')].map((x) => x.textContent),
      alignRight: (b.querySelector('table td[align="right"]') || {}).textContent,
      langs: [...b.querySelectorAll('.codeblock')].map((x) => x.dataset.lang + ':' + x.querySelector('.code-lang').textContent),
      copies: b.querySelectorAll('.codeblock button.copy').length,
    }));
    check(shape.h1 === 'Release notes' && shape.h2 === 'What changed' && shape.strong === 'every',
      'Markdown headings and emphasis are rendered', JSON.stringify(shape));
    check(shape.ol === 3 && shape.ul === 2, 'Markdown lists (nested) are rendered', JSON.stringify(shape));
    check(JSON.stringify(shape.th) === '["Module","Lines","Status"]' && shape.td.length === 6 && shape.alignRight === '120',
      'a Markdown table is rendered with its alignment', JSON.stringify(shape));
    check(JSON.stringify(shape.langs) === '["c:c","python:python"]' && shape.copies === 2,
      'code blocks carry their language label and a copy button', JSON.stringify(shape));
    const inert = await page.evaluate(() => {
      const m = document.getElementById('messages');
      const onAttrs = [...m.querySelectorAll('*')].filter((x) => [...x.attributes].some((a) => /^on/i.test(a.name)));
      return {
        xss: window.__mdxss,
        scripts: m.querySelectorAll('script, img, iframe, style').length,
        onAttrs: onAttrs.length,
        jsLinks: [...m.querySelectorAll('a[href]')].filter((a) => /^\s*javascript:/i.test(a.getAttribute('href'))).length,
        badLinkText: [...m.querySelectorAll('.markdown a')].some((a) => a.textContent === 'another bad link'),
        shownAsText: [...m.querySelectorAll('.markdown blockquote')].some((q) =>
          q.textContent.includes('<script>window.__mdxss = 1</script> <img src="x" onerror="window.__mdxss = 2">')),
        safe: [...m.querySelectorAll('.markdown a[href="https://example.org/docs"]')].map((a) => a.target + ' ' + a.rel),
      };
    });
    check(inert.xss === undefined && inert.scripts === 0 && inert.onAttrs === 0 && inert.jsLinks === 0,
      'a <script>, an <img onerror> and a javascript: link in Markdown stay inert (sanitized DOM)', JSON.stringify(inert));
    check(inert.shownAsText, 'raw HTML in Markdown is shown as text', JSON.stringify(inert));
    check(inert.badLinkText && inert.safe.length === 1 && /^_blank noopener/.test(inert.safe[0]),
      'links keep their text; a safe link opens in a new tab without an opener', JSON.stringify(inert));

    // Copy with the Clipboard API, then with the execCommand fallback.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(WEB).origin });
    await page.click(md + ' .codeblock[data-lang="c"] button.copy');
    await page.waitForSelector(md + ' .codeblock[data-lang="c"] button.copy[data-copied="yes"]', { timeout: T });
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    check(clip === 'int runner_line_decode(const char *line, size_t len, json_t **out);\n',
      'the copy button puts the code block on the clipboard', JSON.stringify(clip));
    await page.evaluate(() => {
      navigator.clipboard.writeText = () => Promise.reject(new Error('denied'));
      document.addEventListener('copy', () => { window.__copied = String(getSelection()) || document.activeElement.value; });
    });
    await page.click(md + ' .codeblock[data-lang="python"] button.copy');
    await page.waitForSelector(md + ' .codeblock[data-lang="python"] button.copy[data-copied]', { timeout: T });
    const copied = await page.evaluate(() => window.__copied);
    check(copied === 'for line in sys.stdin:\n    print(json.loads(line)["type"])\n',
      'without the Clipboard API the copy button falls back to execCommand', JSON.stringify(copied));
    await page.$eval('#messages', (m) => { m.scrollTop = m.scrollHeight; });
    await shot(page, '11-markdown');
    await sameAsHistory(page, mid, 'after a Markdown answer');
  });

  await step('tool cards', async () => {
    const tid = await openNewSession('tool cards demo');
    await send(page, 'scenario:replay file=webui_tools.jsonl');
    await runState(page, 'done');
    await page.waitForSelector('#messages li.text.assistant[data-seq] .body.markdown strong', { timeout: T });
    const cards = await page.evaluate(() => {
      const q = (s) => [...document.querySelectorAll(s)];
      const txt = (s) => q(s).map((x) => x.textContent);
      return {
        editTarget: txt('li.tool-edit .tool-target'),
        del: txt('li.tool-edit .diff-line.del .diff-text'),
        add: txt('li.tool-edit .diff-line.add .diff-text'),
        ctx: txt('li.tool-edit .diff-line.ctx .diff-text'),
        multi: q('li.tool-multiedit .diff').length,
        multiAdd: txt('li.tool-multiedit .diff-line.add .diff-text'),
        write: [q('li.tool-write .diff-line.add').length, q('li.tool-write .diff-line.del, li.tool-write .diff-line.ctx').length],
        bash: txt('li.tool-use.tool-bash .command'),
        bashDesc: txt('li.tool-use.tool-bash .tool-extra'),
        bashOut: q('li.tool-result.tool-bash').map((x) => [x.textContent.includes('hello, chatgw'), x.querySelector('details').open]),
        read: txt('li.tool-read .tool-target'),
        grep: txt('li.tool-grep .tool-head').join('|'),
        glob: txt('li.tool-glob .tool-target'),
        long: q('li.tool-result.long').map((x) => [x.querySelector('details').open, x.querySelector('summary').textContent]),
        error: q('li.tool-result.error').map((x) => x.querySelector('details').open),
        colors: ['add', 'del', 'ctx'].map((k) => getComputedStyle(q('li.tool-edit .diff-line.' + k)[0]).backgroundColor),
      };
    });
    const j = JSON.stringify(cards);
    check(cards.editTarget[0] === '/srv/demo/src/greet.c' &&
      JSON.stringify(cards.del) === '["int main(void)","    printf(\\"hello\\\\n\\");"]' &&
      cards.add[0] === 'int main(int argc, char **argv)' && cards.add.length === 3 &&
      cards.ctx.includes('{') && cards.ctx.includes('    return 0;'),
    'an Edit tool_use is a diff card: its file, removed and added lines, context', j);
    check(new Set(cards.colors).size === 3 && !cards.colors.slice(0, 2).includes('rgba(0, 0, 0, 0)'),
      'added and removed lines have backgrounds of their own', j);
    check(cards.multi === 2 && cards.multiAdd.includes('Without NAME it greets the world.'), 'a MultiEdit shows one diff per edit', j);
    check(cards.write[0] === 5 && cards.write[1] === 0, 'a Write shows the new content as added lines', j);
    check(cards.bash[0] === 'make greet && ./greet chatgw' && cards.bashDesc[0] === 'Build and run the greeter' &&
      cards.bashOut[0][0] && cards.bashOut[0][1], 'a Bash card shows its command and description, its short output open', j);
    check(cards.long.length === 1 && cards.long[0][0] === false && /Output of Bash · 60 lines/.test(cards.long[0][1]),
      'a long result is collapsed with its line count', j);
    check(cards.read[0] === '/srv/demo/src/greet.c' && /Grep\s*printf\\\(\s*in \/srv\/demo\/src, files \*\.c/.test(cards.grep) &&
      cards.glob[0] === '**/*.c', 'Read, Grep and Glob cards show their target', j);
    check(cards.error.length === 1 && cards.error[0] === true, 'an error result is open', j);
    await page.$eval('#messages li.tool-edit', (x) => x.scrollIntoView({ block: 'start' }));
    await shot(page, '12-tool-cards');
    await page.click('#messages li.tool-result.long summary');
    check(await page.isVisible('#messages li.tool-result.long pre'), 'a collapsed result opens on a click');
    await page.$eval('#messages li.tool-bash', (x) => x.scrollIntoView({ block: 'start' }));
    await shot(page, '13-tool-cards-bash');
    await sameAsHistory(page, tid, 'after tool cards');
  });

  await step('paging', async () => {
    const pid = await openNewSession('paging demo');
    await send(page, 'scenario:replay file=webui_tools.jsonl repeat=25');
    await runState(page, 'done');
    const hist = (await historyComplete(pid)).map((m) => [m.seq, m.kind]);
    await page.reload();
    await page.waitForSelector('#app', { state: 'visible', timeout: T });
    await runState(page, 'done');
    await page.waitForSelector('#load-older', { timeout: T });
    const first = await domMessages(page);
    check(hist.length > 400 && first.length === 200 &&
      JSON.stringify(first) === JSON.stringify(hist.slice(-200)),
    'a long session opens with its latest page of history', 'history ' + hist.length + ', shown ' + first.length);
    // Scrolled to the top, the oldest shown message must stay where it is when older
    // ones are put above it.
    await page.$eval('#messages', (m) => { m.scrollTop = 0; });
    const pos = () => page.evaluate((seq) => {
      const li = document.querySelector('#messages li[data-seq="' + seq + '"]');
      return li.getBoundingClientRect().top;
    }, first[0][0]);
    const top0 = await pos();
    await shot(page, '14-paging-before');
    await page.click('#load-older');
    await page.waitForFunction(() => document.querySelectorAll('#messages li[data-seq]').length === 400, null, { timeout: T });
    const top1 = await pos();
    check(Math.abs(top1 - top0) < 2, '"Load older" prepends a page and keeps the scroll position', top0 + ' -> ' + top1);
    check(JSON.stringify(await domMessages(page)) === JSON.stringify(hist.slice(-400)), 'the older page is in order before the rest');
    await shot(page, '15-paging-after');
    while (await page.isVisible('#load-older')) {
      const n = (await domMessages(page)).length;
      await page.click('#load-older');
      await page.waitForFunction((k) => document.querySelectorAll('#messages li[data-seq]').length > k ||
        !document.getElementById('load-older'), n, { timeout: T });
    }
    check(!(await page.$('#load-older')), 'no "Load older" once the first message is shown');
    const unnamed = await page.$$eval('#messages li.tool-result summary', (l) => l.filter((x) => / of tool /.test(x.textContent)).length);
    check(unnamed === 0, 'a result shown before its older tool_use was loaded gets the tool\'s name', unnamed);
    await sameAsHistory(page, pid, 'after loading every older page');
  });

  await step('sessions search', async () => {
    const visible = () => page.$$eval('#session-list a[data-sid]', (l) => l.map((a) => a.querySelector('.session-title').textContent));
    const all = await visible();
    await page.fill('#session-search', 'PAGING');
    await page.waitForFunction(() => document.querySelectorAll('#session-list a[data-sid]').length === 1, null, { timeout: T });
    check(JSON.stringify(await visible()) === '["paging demo"]', 'the search filters sessions by title, ignoring case', JSON.stringify(await visible()));
    await shot(page, '16-search');
    await page.fill('#session-search', sid.slice(0, 8));
    await page.waitForFunction(() => document.querySelectorAll('#session-list a[data-sid]').length === 1, null, { timeout: T });
    check((await page.$$eval('#session-list a[data-sid]', (l) => l.map((a) => a.dataset.sid)))[0] === sid, 'and by session id');
    await page.fill('#session-search', path.basename(PROJECT));
    await page.waitForFunction((n) => document.querySelectorAll('#session-list a[data-sid]').length === n, all.length, { timeout: T });
    check(true, 'and by project path');
    await page.fill('#session-search', 'no-such-session-zzz');
    await page.waitForSelector('#session-list li.none', { timeout: T });
    check(/No session matches/.test(await page.textContent('#session-list li.none')), 'no match says so');
    await page.press('#session-search', 'Escape');
    await page.waitForFunction((n) => document.querySelectorAll('#session-list a[data-sid]').length === n, all.length, { timeout: T });
    check(true, 'Escape clears the search');
  });

  await step('attachments', async () => {
    // A PNG made in the page and pasted into the composer: uploaded, shown as a
    // thumbnail, sent with the prompt, shown in the user message (fetched with the
    // token), and received by the CLI (fake-claude's scenario:attachments answers with
    // the sha256 of each image block it got).
    await page.setViewportSize({ width: 1200, height: 800 });
    const id = await openNewSession('attachments demo');
    const bytes = await page.evaluate(async () => {
      const c = document.createElement('canvas');
      c.width = 24; c.height = 16;
      const g = c.getContext('2d');
      g.fillStyle = '#2f5fd0'; g.fillRect(0, 0, 24, 16);
      g.fillStyle = '#f0c000'; g.fillRect(4, 4, 10, 8);
      const blob = await new Promise((res) => c.toBlob(res, 'image/png'));
      const file = new File([blob], 'shot.png', { type: 'image/png' });
      const dt = new DataTransfer();
      dt.items.add(file);
      const ta = document.getElementById('prompt');
      ta.focus();
      ta.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      return [...new Uint8Array(await blob.arrayBuffer())];
    });
    const sha = require('crypto').createHash('sha256').update(Buffer.from(bytes)).digest('hex');
    await page.waitForSelector('#attachments li.attachment.image[data-id] img', { timeout: T });
    const thumb = await page.$eval('#attachments li.attachment.image img', (i) => ({ src: i.src, w: i.naturalWidth }));
    check(thumb.src.startsWith('blob:') && thumb.w === 24, 'a pasted image is uploaded and shown as a thumbnail in the composer', JSON.stringify(thumb));
    const attId = await page.$eval('#attachments li.attachment.image', (li) => li.dataset.id);
    const listed = await api('GET', '/sessions/' + id + '/attachments');
    check(listed.attachments && listed.attachments.length === 1 && listed.attachments[0].id === attId &&
      listed.attachments[0].mimeType === 'image/png' && listed.attachments[0].size === bytes.length,
    'the upload is the session\'s attachment, with its type and size', JSON.stringify(listed));
    await page.fill('#prompt', 'scenario:attachments');
    await shot(page, '17-attachment-composer');
    await page.click('#send');
    await runState(page, 'done');
    check(await page.$eval('#attachments', (u) => u.hidden && u.children.length === 0), 'the composer is cleared after the send');
    const userImg = '#messages li.text.user[data-seq] li.attachment.image[data-id="' + attId + '"] img';
    await page.waitForFunction((sel) => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }, userImg, { timeout: T });
    const shown = await page.$eval(userImg, (i) => ({ src: i.src, w: i.naturalWidth, h: i.naturalHeight }));
    check(shown.src.startsWith('blob:') && shown.w === 24 && shown.h === 16, 'the user message shows the attached image (fetched with the token)', JSON.stringify(shown));
    const texts = await page.$$eval('#messages li.text.assistant[data-seq] .body', (b) => b.map((x) => x.textContent));
    const answer = texts[texts.length - 1] || '';
    check(answer.includes('image:' + sha), 'the CLI received the pasted PNG (its sha256)', 'want image:' + sha + '\ngot: ' + answer);
    const hist = await historyComplete(id);
    const user = hist.find((m) => m.kind === 'text' && m.role === 'user');
    check(user && Array.isArray(user.attachments) && user.attachments.length === 1 && user.attachments[0].id === attId,
      'history\'s user message carries the attachment', JSON.stringify(user));
    await shot(page, '18-attachment-sent');

    // A file that is not an image: a chip with its name and size; removable.
    await page.setInputFiles('#attach-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello attachments\n') });
    await page.waitForSelector('#attachments li.attachment.file[data-id]', { timeout: T });
    const chipText = await page.textContent('#attachments li.attachment.file');
    check(/notes\.txt/.test(chipText) && /18 B/.test(chipText), 'a picked file shows as a chip with its name and size', chipText);
    // A file dropped on the composer joins it.
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['{"dropped":true}\n'], 'dropped.json', { type: 'application/json' }));
      const c = document.getElementById('composer');
      c.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      c.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => document.querySelectorAll('#attachments li.attachment.file[data-id]').length === 2, null, { timeout: T });
    check(/dropped\.json/.test(await page.textContent('#attachments')), 'a file dropped on the composer is uploaded too');
    check(await page.isVisible('#attach'), 'the Attach button shows for a provider that takes attachments');
    await shot(page, '19-attachment-files');
    const fileIds = await page.$$eval('#attachments li.attachment.file', (l) => l.map((li) => li.dataset.id));
    for (let k = 0; k < fileIds.length; k++) await page.click('#attachments li.attachment.file button.remove');
    await page.waitForFunction(() => document.getElementById('attachments').hidden, null, { timeout: T });
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      const l = await api('GET', '/sessions/' + id + '/attachments');
      gone = !l.attachments.some((a) => fileIds.includes(a.id));
      if (!gone) await new Promise((res) => setTimeout(res, 100));
    }
    check(gone, 'removing a chip deletes the uploaded attachment', JSON.stringify(fileIds));

    // A refused upload shows the server's error (SVG is refused: it can carry script).
    await page.setInputFiles('#attach-input', { name: 'x.svg', mimeType: 'image/svg+xml', buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') });
    await page.waitForFunction(() => !document.getElementById('banner').hidden && /Cannot attach x\.svg/.test(document.getElementById('banner').textContent), null, { timeout: T });
    const b = await page.textContent('#banner');
    check(b.length > 'Cannot attach x.svg: '.length && !/HTTP 415/.test(b), 'a refused upload shows the server\'s error text', b);
    check(await page.$eval('#attachments', (u) => u.hidden), 'and leaves nothing in the composer');
    await shot(page, '20-attachment-refused');
  });

  await step('stream refused', async () => {
    // A web server (or proxy) that refuses GET /chat/stream: the page gives up on
    // streams after a few failures and long-polls; the run's events still all arrive.
    const p = await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(String(e)));
    const n = watchTransport(p);
    await p.route(/\/chat\/stream\?/, (route) => route.fulfill({ status: 502, contentType: 'text/plain', body: 'no streams here' }));
    const r = await api('POST', '/sessions', { provider: 'claude', projectPath: PROJECT, name: 'no streams' });
    const id = r.session.id;
    await p.goto(WEB + '#/s/' + encodeURIComponent(id));
    await p.waitForSelector('#app', { state: 'visible', timeout: T });
    await p.waitForSelector('#conn[data-transport="poll"]', { state: 'attached', timeout: T });
    check(n.streams >= 3, 'the page tried the stream before falling back', JSON.stringify(n));
    await send(p, 'scenario:slow n=8 delay=0.1');
    await runState(p, 'done');
    const texts = await p.$$eval('#messages li.text.assistant[data-seq] .body', (b) => b.map((x) => x.textContent));
    const want = Array.from({ length: 8 }, (_, k) => 'tick' + k + ' ').join('');
    check(texts[texts.length - 1] === want, 'with streams refused the run arrives by long-poll', texts[texts.length - 1]);
    check(n.waitingPolls > 0, 'the page long-polls when streams are refused', JSON.stringify(n));
    await p.waitForFunction(() => document.getElementById('conn').textContent === '', null, { timeout: T });
    check(true, 'no connection problem shown once long-polling works');
    await sameAsHistory(p, id, 'long-poll fallback');
    await p.close();
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
    // With a stream the truncated ack comes inside it (not visible here): the hole fill
    // from history below is the proof; a long-poll's answer is checked directly.
    check(seen.truncated || transport.waitingPolls === 0, 'the poll after the network came back was truncated');
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
