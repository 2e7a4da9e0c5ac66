// chatgw reference web UI: plain JavaScript, no build step, same origin only.
//
// One loop follows the open session (with its cursor, lastSeq) and the caller's session
// feed (feedSeq): through GET /chat/stream (Server-Sent Events) where EventSource exists,
// else, or when streams keep failing (a proxy that buffers them), by long-polling
// POST /chat/subscribe. Every event is applied once:
// anything with seq <= cursor is dropped, so replays after a reload, a lost network or
// a `truncated` hole filled from history never double a message. Event text always
// goes through textContent, never innerHTML; assistant Markdown is sanitized by DOMPurify
// into DOM nodes (see markdown()).
'use strict';

(function () {
  const API = new URL(
    (document.querySelector('meta[name="chatgw-api"]') || {}).content || '/api',
    location.origin).pathname.replace(/\/+$/, '');
  const TOKEN_KEY = 'chatgw.token';
  const PATH_KEY = 'chatgw.projectPath';
  const WAIT_MS = 25000;

  const $ = (id) => document.getElementById(id);

  // el('li', {class: 'x', dataset: {seq: 3}}, 'text', child): strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const state = {
    token: localStorage.getItem(TOKEN_KEY) || '',
    authed: false,       // logged in: with the token, or by the web server (REMOTE_USER)
    providers: [],
    sessions: new Map(), // id -> session
    feedSeq: null,       // null: not started yet
    view: null,          // the open session's view (see View)
    poll: null,          // AbortController of the request (or stream) in flight
    backoff: 0,
    streamFails: 0,      // streams in a row that failed before their first event
    pollUntil: 0,        // long-poll instead of streaming until then (Date.now() ms)
    started: false,
  };

  // ---- HTTP -------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error) || ('HTTP ' + status));
      this.status = status;
      this.code = body && body.code;
    }
  }

  async function api(method, path, body, signal) {
    const headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const init = { method, headers, signal, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(API + path, init);
    let json = null;
    try { json = await r.json(); } catch (e) { json = null; }
    if (r.status === 401) { logout('Your token was not accepted.'); throw new ApiError(401, json); }
    if (!r.ok) throw new ApiError(r.status, json);
    return json;
  }

  function banner(text) {
    const b = $('banner');
    b.textContent = text || '';
    b.hidden = !text;
    clearTimeout(banner.timer);
    if (text) banner.timer = setTimeout(() => { b.hidden = true; }, 8000);
  }

  function connState(text) { $('conn').textContent = text; }

  // ---- login ------------------------------------------------------------------------
  function showLogin(message) {
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token-input').focus();
  }

  function logout(message) {
    localStorage.removeItem(TOKEN_KEY);
    state.token = '';
    state.authed = false;
    if (state.poll) state.poll.abort();
    state.view = null;
    state.sessions.clear();
    state.feedSeq = null;
    forgetBlobs();
    showLogin(message);
  }

  async function login(token) {
    state.token = token;
    try {
      state.providers = await api('GET', '/providers');
    } catch (e) {
      if (e.status !== 401) showLogin('Cannot reach chatgw: ' + e.message);
      return;
    }
    if (token) localStorage.setItem(TOKEN_KEY, token);
    state.authed = true;
    $('login').hidden = true;
    $('app').hidden = false;
    fillProviders();
    await reloadSessions();
    openFromHash();
    if (!state.started) {
      state.started = true;
      pollLoop();
    }
  }

  // ---- sessions sidebar ---------------------------------------------------------------
  function fillProviders() {
    const sel = $('ns-provider');
    sel.replaceChildren();
    for (const p of state.providers) {
      sel.append(el('option', { value: p.provider, disabled: !p.available },
        p.provider + (p.available ? '' : ' (not available)')));
    }
    const first = state.providers.find((p) => p.available);
    if (first) sel.value = first.provider;
    $('ns-path').value = localStorage.getItem(PATH_KEY) || '';
  }

  async function reloadSessions() {
    const archived = $('show-archived').checked ? 'all' : 'false';
    const r = await api('GET', '/sessions?limit=500&archived=' + archived);
    state.sessions.clear();
    for (const s of r.sessions) state.sessions.set(s.id, s);
    renderSessions();
  }

  function sessionTitle(s) { return s.name || 'Session ' + s.id.slice(0, 8); }

  function renderSessions() {
    const list = $('session-list');
    const showArchived = $('show-archived').checked;
    const all = [...state.sessions.values()].filter((s) => showArchived || !s.archived);
    const q = $('session-search').value.trim().toLowerCase();
    const items = all
      .filter((s) => !q || [sessionTitle(s), s.id, s.projectPath, s.provider].some((x) => String(x || '').toLowerCase().includes(q)))
      .sort((a, b) => (b.updatedAt || '').localeCompare(a.updatedAt || ''));
    list.replaceChildren(...items.map((s) => {
      const current = state.view && state.view.sid === s.id;
      return el('li', { class: 'session-item' + (s.archived ? ' archived' : '') },
        el('a', {
          href: '#/s/' + encodeURIComponent(s.id),
          'aria-current': current ? 'page' : null,
          dataset: { sid: s.id },
        },
        el('span', { class: 'session-title' }, sessionTitle(s)),
        s.isProcessing ? el('span', { class: 'dot', title: 'running', 'aria-label': 'running' }) : null,
        el('span', { class: 'session-sub' }, s.provider + ' · ' + s.projectPath)));
    }));
    if (!items.length) list.append(el('li', { class: 'none' }, all.length ? 'No session matches “' + q + '”.' : 'No sessions yet.'));
    if (state.view) renderHeader();
  }

  function applyFeedFrame(f) {
    if (f.deleted) state.sessions.delete(f.sessionId);
    else if (f.session) state.sessions.set(f.session.id, f.session);
    if (state.view && state.view.sid === f.sessionId && f.deleted) {
      location.hash = '';
      closeView();
    }
  }

  async function createSession(ev) {
    ev.preventDefault();
    const body = { provider: $('ns-provider').value, projectPath: $('ns-path').value.trim() };
    const name = $('ns-name').value.trim();
    if (name) body.name = name;
    try {
      const r = await api('POST', '/sessions', body);
      localStorage.setItem(PATH_KEY, body.projectPath);
      state.sessions.set(r.session.id, r.session);
      $('ns-name').value = '';
      $('new-session').open = false;
      renderSessions();
      location.hash = '#/s/' + encodeURIComponent(r.session.id);
    } catch (e) {
      banner('Cannot create the session: ' + e.message);
    }
  }

  // ---- Markdown ---------------------------------------------------------------------
  // Assistant text is Markdown: marked (vendor/marked) turns it into HTML, DOMPurify
  // (vendor/dompurify) keeps only the tags and attributes below and hands back a DOM
  // fragment, so no HTML string of ours ever reaches innerHTML. Raw HTML in the text
  // (<script>, <img onerror>) is shown as text, the way a prompt is (it is escaped by
  // the renderer, so not even the parser sees it as markup); whatever else could carry
  // code (javascript: links) is dropped by the sanitizer. Images become links (the CSP
  // would block them anyway). Without the libraries (a page copied without vendor/) the
  // text is shown as plain text.
  const MD_TAGS = ['a', 'blockquote', 'br', 'code', 'del', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
    'hr', 'li', 'ol', 'p', 'pre', 's', 'strong', 'sub', 'sup', 'table', 'tbody', 'td', 'tfoot',
    'th', 'thead', 'tr', 'ul', 'kbd', 'span'];
  const MD_ATTRS = ['href', 'title', 'align', 'start', 'class', 'colspan', 'rowspan'];
  const mdReady = !!(window.marked && typeof window.marked.parse === 'function' &&
    window.DOMPurify && window.DOMPurify.isSupported);
  if (mdReady) {
    const esc = (s) => String(s).replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
    window.marked.use({
      gfm: true,
      async: false,
      renderer: {
        image(tok) { return '<a href="' + esc(tok.href || '') + '">' + esc(tok.text || tok.href || 'image') + '</a>'; },
        html(tok) { return tok.block ? '<p>' + esc(tok.text) + '</p>' : esc(tok.text); },
      },
    });
    window.DOMPurify.addHook('uponSanitizeAttribute', (node, data) => {
      // class only for a code block's language (language-c), nothing else styles the page.
      if (data.attrName === 'class' && !/^language-[\w+#.-]{1,40}$/.test(data.attrValue)) data.keepAttr = false;
    });
    window.DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.nodeName === 'A' && node.hasAttribute('href')) {
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noopener noreferrer nofollow');
      }
    });
  }

  // Markdown text -> a sanitized DocumentFragment (or a text node without the libraries).
  function markdown(text) {
    if (!mdReady) return document.createTextNode(text);
    const html = window.marked.parse(text || '').trim();
    const frag = window.DOMPurify.sanitize(html, {
      ALLOWED_TAGS: MD_TAGS, ALLOWED_ATTR: MD_ATTRS, RETURN_DOM_FRAGMENT: true,
    });
    for (const pre of frag.querySelectorAll('pre')) decorateCode(pre);
    return frag;
  }

  // A code block gets a head with its language (```c -> "c") and a Copy button.
  function decorateCode(pre) {
    const code = pre.querySelector('code');
    const m = code && /(?:^|\s)language-(\S+)/.exec(code.className);
    const lang = m ? m[1] : '';
    const wrap = el('div', { class: 'codeblock', dataset: { lang } });
    pre.replaceWith(wrap);
    wrap.append(el('div', { class: 'code-head' },
      el('span', { class: 'code-lang' }, lang || 'text'),
      el('button', {
        type: 'button', class: 'ghost copy', title: 'Copy to the clipboard',
        onclick: (ev) => copyText(ev.currentTarget, (code || pre).textContent),
      }, 'Copy')), pre);
  }

  // navigator.clipboard where the page may use it (a secure context, permission),
  // else a selected off-screen textarea and execCommand('copy').
  async function copyText(btn, text) {
    let ok = false;
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        ok = true;
      }
    } catch (e) { ok = false; }
    if (!ok) {
      const ta = el('textarea', { class: 'copy-buffer', readonly: true, 'aria-hidden': 'true' });
      ta.value = text;
      document.body.append(ta);
      ta.focus();
      ta.select();
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      ta.remove();
    }
    btn.textContent = ok ? 'Copied' : 'Copy failed';
    btn.dataset.copied = ok ? 'yes' : 'no';
    clearTimeout(btn.timer);
    btn.timer = setTimeout(() => { btn.textContent = 'Copy'; }, 2000);
  }

  // ---- tool cards -------------------------------------------------------------------
  // Tool names of every provider mapped to how their card looks. Claude Code's names,
  // Cursor's (the adapter maps them to Claude's), Gemini CLI's, OpenCode's and Codex's
  // (Bash, FileChanges).
  const TOOL_KINDS = {
    edit: 'edit', replace: 'edit', edit_file: 'edit', str_replace_editor: 'edit',
    multiedit: 'multiedit',
    write: 'write', write_file: 'write', create_file: 'write',
    bash: 'bash', shell: 'bash', run_shell_command: 'bash', exec_command: 'bash', local_shell: 'bash',
    read: 'read', read_file: 'read', view: 'read', notebookread: 'read',
    grep: 'grep', search_file_content: 'grep', grep_search: 'grep',
    glob: 'glob', find_files: 'glob', ls: 'glob', list: 'glob', list_directory: 'glob',
    filechanges: 'changes',
  };
  const LONG_LINES = 24; // a tool's output or diff longer than this starts folded

  function toolKind(name) { return TOOL_KINDS[String(name || '').toLowerCase()] || ''; }

  function pick(o, keys) {
    if (!o || typeof o !== 'object') return undefined;
    for (const k of keys) if (typeof o[k] === 'string') return o[k];
    return undefined;
  }
  const PATH_KEYS = ['file_path', 'filePath', 'absolute_path', 'path', 'notebook_path', 'dir_path', 'target_file'];
  const OLD_KEYS = ['old_string', 'oldString', 'old_str'];
  const NEW_KEYS = ['new_string', 'newString', 'new_str'];

  function lines(s) {
    if (!s) return [];
    const l = String(s).split('\n');
    if (l.length > 1 && l[l.length - 1] === '') l.pop();
    return l;
  }

  // A line diff of two texts: [[op, line]...], op ' ' (both), '-' (old only), '+' (new
  // only). Common head and tail lines are matched first; the middle by the longest
  // common subsequence when it is small enough, else all removed then all added.
  function lineDiff(a, b) {
    let s = 0;
    while (s < a.length && s < b.length && a[s] === b[s]) s++;
    let e = 0;
    while (e < a.length - s && e < b.length - s && a[a.length - 1 - e] === b[b.length - 1 - e]) e++;
    const A = a.slice(s, a.length - e);
    const B = b.slice(s, b.length - e);
    const out = a.slice(0, s).map((l) => [' ', l]);
    if (A.length * B.length > 250000) {
      for (const l of A) out.push(['-', l]);
      for (const l of B) out.push(['+', l]);
    } else {
      const w = B.length + 1;
      const L = new Uint32Array((A.length + 1) * w); // L[i][j]: LCS of A[i..], B[j..]
      for (let i = A.length - 1; i >= 0; i--) {
        for (let j = B.length - 1; j >= 0; j--) {
          L[i * w + j] = A[i] === B[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
        }
      }
      let i = 0;
      let j = 0;
      while (i < A.length || j < B.length) {
        if (i < A.length && j < B.length && A[i] === B[j]) {
          out.push([' ', A[i]]); i++; j++;
        } else if (i < A.length && (j === B.length || L[(i + 1) * w + j] >= L[i * w + j + 1])) {
          out.push(['-', A[i]]); i++;
        } else {
          out.push(['+', B[j]]); j++;
        }
      }
    }
    for (const l of a.slice(a.length - e)) out.push([' ', l]);
    return out;
  }

  function diffBlock(ops) {
    const cls = { ' ': 'ctx', '-': 'del', '+': 'add' };
    const added = ops.filter((o) => o[0] === '+').length;
    const removed = ops.filter((o) => o[0] === '-').length;
    const block = el('div', { class: 'diff', 'aria-label': 'Changes' },
      ...ops.map(([op, l]) => el('div', { class: 'diff-line ' + cls[op] },
        el('span', { class: 'diff-sign', 'aria-hidden': 'true' }, op), el('span', { class: 'diff-text' }, l))));
    return { block, added, removed };
  }

  // A node, folded into <details> with a line count when it is longer than LONG_LINES.
  function foldable(label, count, node, open) {
    const what = count + (count === 1 ? ' line' : ' lines');
    return el('details', { class: 'fold', open: open === undefined ? count <= LONG_LINES : open },
      el('summary', {}, label ? label + ' · ' + what : what), node);
  }

  function toolHead(name, target, extra) {
    return el('div', { class: 'tool-head' },
      el('span', { class: 'tool-name' }, name || '?'),
      target ? el('code', { class: 'tool-target' }, target) : null,
      extra ? el('span', { class: 'tool-extra' }, extra) : null);
  }

  // The body of a tool_use card: what the tool does, the way the tool itself reads.
  function toolBody(e) {
    const name = e.toolName || '?';
    const input = e.toolInput;
    const kind = toolKind(name);
    const path = pick(input, PATH_KEYS);
    const stat = (d) => '+' + d.added + ' −' + d.removed;
    switch (kind) {
      case 'edit': {
        const oldS = pick(input, OLD_KEYS);
        const newS = pick(input, NEW_KEYS);
        if (oldS === undefined && newS === undefined) break;
        const d = diffBlock(lineDiff(lines(oldS), lines(newS)));
        return [toolHead(name, path, stat(d) + (input.replace_all ? ' (all)' : '')), foldable('Diff', d.added + d.removed, d.block)];
      }
      case 'multiedit': {
        const edits = Array.isArray(input && input.edits) ? input.edits : null;
        if (!edits) break;
        const ds = edits.map((x) => diffBlock(lineDiff(lines(pick(x, OLD_KEYS)), lines(pick(x, NEW_KEYS)))));
        const total = { added: ds.reduce((n, d) => n + d.added, 0), removed: ds.reduce((n, d) => n + d.removed, 0) };
        const box = el('div', { class: 'diffs' }, ...ds.map((d) => d.block));
        return [toolHead(name, path, edits.length + ' edits, ' + stat(total)), foldable('Diff', total.added + total.removed, box)];
      }
      case 'write': {
        const content = pick(input, ['content', 'file_text', 'text']);
        if (content === undefined) break;
        const d = diffBlock(lines(content).map((l) => ['+', l]));
        return [toolHead(name, path, stat(d)), foldable('New content', d.added, d.block)];
      }
      case 'bash': {
        const cmd = pick(input, ['command', 'cmd']) || (Array.isArray(input && input.command) ? input.command.join(' ') : undefined);
        if (cmd === undefined) break;
        return [toolHead(name, null, pick(input, ['description'])), el('pre', { class: 'code command' }, cmd)];
      }
      case 'read': {
        if (path === undefined) break;
        const off = input.offset;
        const lim = input.limit;
        const range = off !== undefined || lim !== undefined ? 'lines ' + (off || 1) + (lim ? '–' + ((off || 1) + lim - 1) : '–') : null;
        return [toolHead(name, path, range)];
      }
      case 'grep':
      case 'glob': {
        const pattern = pick(input, ['pattern', 'query', 'regex']);
        if (pattern === undefined && path === undefined) break;
        const filter = pick(input, ['glob', 'include', 'type']);
        const where = [pattern !== undefined && path ? 'in ' + path : null, filter ? 'files ' + filter : null].filter(Boolean).join(', ');
        return [toolHead(name, pattern !== undefined ? pattern : path, where || null)];
      }
      case 'changes': {
        if (!Array.isArray(input)) break;
        return [toolHead(name, null, input.length + ' files'),
          el('ul', { class: 'changes' }, ...input.map((c) => el('li', {}, (c && c.kind) || 'update', ' ', el('code', {}, (c && c.path) || '?'))))];
      }
      default:
        break;
    }
    const text = asText(input);
    return [toolHead(name, null, null), foldable('Input', lines(text).length, el('pre', { class: 'code' }, text))];
  }

  // ---- the open session ---------------------------------------------------------------
  // A View holds what is shown of one session: cursor = the highest seq applied.
  class View {
    constructor(sid) {
      this.sid = sid;
      this.cursor = 0;
      this.loaded = false;    // history fetched
      this.running = false;
      this.runId = null;
      this.lastComplete = null;
      this.live = null;       // the <li> collecting stream_delta text of the answer
      this.perms = new Map(); // requestId -> card element of an open permission request
      this.tools = new Map(); // toolId -> tool_use element
      this.liveText = '';     // the Markdown source of the streaming answer
      this.liveFrame = null;  // a render of it is scheduled
      this.oldest = null;     // seq of the oldest message shown ("Load older" pages before it)
      this.hasOlder = false;
      this.loadingOlder = false;
      this.orphans = new Map(); // toolId -> tool_result event shown before its tool_use
      this.draft = [];        // the composer's attachments (see "attachments" below)
    }
  }

  function openFromHash() {
    const m = /^#\/s\/(.+)$/.exec(location.hash);
    const sid = m ? decodeURIComponent(m[1]) : null;
    if (state.view && state.view.sid === sid) return;
    if (!sid) { closeView(); return; }
    dropDraft(state.view);
    state.view = new View(sid);
    $('messages').replaceChildren();
    $('empty').hidden = true;
    $('session-view').hidden = false;
    renderSessions();
    restartPoll();
  }

  function closeView() {
    dropDraft(state.view);
    state.view = null;
    $('messages').replaceChildren();
    $('session-view').hidden = true;
    $('empty').hidden = false;
    renderSessions();
    restartPoll();
  }

  function renderHeader() {
    const v = state.view;
    const s = state.sessions.get(v.sid);
    const name = $('session-name');
    if (s && document.activeElement !== name) name.value = s.name || '';
    $('session-meta').textContent = s ? s.provider + ' · ' + s.projectPath : '';
    $('archive').textContent = s && s.archived ? 'Unarchive' : 'Archive';
    const rs = $('run-state');
    let text = 'idle';
    let cls = 'idle';
    if (v.running) { text = 'running'; cls = 'running'; } else if (v.lastComplete) {
      const c = v.lastComplete;
      if (c.aborted) { text = 'aborted'; cls = 'aborted'; } else if (c.success) { text = 'done'; cls = 'done'; } else {
        text = 'failed (exit ' + c.exitCode + (c.reason ? ', ' + c.reason : '') + ')'; cls = 'failed';
      }
    }
    rs.textContent = text;
    rs.className = 'run-state ' + cls;
    rs.dataset.state = cls;
    $('abort').hidden = !v.running;
    $('send').disabled = v.running || !!v.sending;
    const modes = $('perm-mode');
    const prov = s && state.providers.find((p) => p.provider === s.provider);
    const want = prov ? (prov.permissionModes || []) : [];
    if (modes.dataset.provider !== (s && s.provider)) {
      modes.dataset.provider = s ? s.provider : '';
      modes.replaceChildren(...want.map((m) => el('option', { value: m }, m)));
      modes.hidden = !want.length;
    }
    // A provider that takes no attachments (supportsAttachments false: cursor) has no
    // Attach button; a paste or drop there gets the server's refusal in the banner.
    $('attach').hidden = !!prov && prov.supportsAttachments === false;
  }

  function fmtTime(ts) {
    if (!ts) return '';
    const d = new Date(ts);
    return isNaN(d) ? '' : d.toLocaleTimeString();
  }

  function asText(v) {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && v.every((x) => x && typeof x.text === 'string')) return v.map((x) => x.text).join('\n');
    return JSON.stringify(v, null, 2);
  }

  function scrollDown(force) {
    const m = $('messages');
    const near = m.scrollHeight - m.scrollTop - m.clientHeight < 120;
    if (force || near) m.scrollTop = m.scrollHeight;
  }

  // One <li> per persisted event, in seq order, carrying data-seq and data-kind.
  function item(e, cls, ...children) {
    return el('li', {
      class: 'msg ' + cls,
      dataset: { seq: e.seq, kind: e.kind },
      title: fmtTime(e.timestamp),
    }, ...children);
  }

  // Closes a permission card; final=true (the event that says how it ended) also
  // corrects the outcome of a card closed earlier as "answered elsewhere".
  function closePermission(v, requestId, outcome, final) {
    let card = v.perms.get(requestId);
    if (!card && final) {
      card = [...document.querySelectorAll('#messages li.permission')].find((c) => c.dataset.requestId === requestId);
      const shown = card && card.querySelector('.perm-outcome');
      if (shown) shown.textContent = outcome;
      return;
    }
    if (!card) return;
    v.perms.delete(requestId);
    card.classList.add('resolved');
    const actions = card.querySelector('.perm-actions');
    if (actions) actions.replaceWith(el('p', { class: 'perm-outcome' }, outcome));
  }

  function permissionCard(v, e) {
    const input = e.input !== undefined ? e.input : e.toolInput;
    const cmd = input && typeof input.command === 'string' ? input.command : null;
    // The server derives the rule from the pending request itself (remember: "exact").
    const remember = e.toolName === 'Bash' && cmd ? 'this exact command' : 'this exact ' + (e.toolName || 'tool') + ' use';
    const answer = async (allow, rememberForm) => {
      const body = { requestId: e.requestId, allow };
      if (rememberForm) body.remember = rememberForm;
      if (!allow) body.message = 'Denied in the web UI';
      for (const b of card.querySelectorAll('button')) b.disabled = true;
      try {
        await api('POST', '/chat/permission', body);
        closePermission(v, e.requestId, allow ? 'Allowed' : 'Denied');
      } catch (err) {
        if (err.code === 'PERMISSION_ALREADY_RESOLVED' || err.code === 'PERMISSION_NOT_FOUND') {
          closePermission(v, e.requestId, 'Answered elsewhere');
        } else {
          for (const b of card.querySelectorAll('button')) b.disabled = false;
          banner('Cannot answer the permission request: ' + err.message);
        }
      }
    };
    const card = item(e, 'permission', el('div', { class: 'label' }, 'Permission request'),
      el('p', {}, 'Allow ', el('strong', {}, e.toolName || 'tool'), '?'),
      ...toolBody({ toolName: e.toolName, toolInput: input }),
      el('div', { class: 'perm-actions', role: 'group', 'aria-label': 'Answer' },
        el('button', { type: 'button', class: 'primary perm-allow', onclick: () => answer(true) }, 'Allow'),
        el('button', {
          type: 'button', class: 'perm-remember', title: 'Allow and remember ' + remember,
          onclick: () => answer(true, 'exact'),
        }, 'Allow and remember'),
        el('button', { type: 'button', class: 'danger perm-deny', onclick: () => answer(false) }, 'Deny')));
    card.dataset.requestId = e.requestId;
    v.perms.set(e.requestId, card);
    return card;
  }

  function endLive(v) {
    cancelLive(v);
    if (v.live) { v.live.remove(); v.live = null; }
  }

  // The streaming answer is re-rendered as Markdown at most once per animation frame
  // (a hidden tab gets no frames: there, every 100 ms), replacing the body's children
  // in one step, so the page never shows it half-built.
  function scheduleLive(v) {
    if (v.liveFrame) return;
    const run = () => { v.liveFrame = null; renderLive(v); };
    v.liveFrame = document.hidden ? { timeout: setTimeout(run, 100) } : { frame: requestAnimationFrame(run) };
  }

  function cancelLive(v) {
    if (!v.liveFrame) return;
    if (v.liveFrame.frame) cancelAnimationFrame(v.liveFrame.frame);
    if (v.liveFrame.timeout) clearTimeout(v.liveFrame.timeout);
    v.liveFrame = null;
  }

  function renderLive(v) {
    if (!v.live || state.view !== v) return;
    v.live.querySelector('.body').replaceChildren(markdown(v.liveText));
    scrollDown();
  }

  // The <li> of one persisted event. old: a Map (requestId -> card) when the event comes
  // from an older page of history ("Load older"): then it changes nothing of the view's
  // live state (run state, streaming answer, open permission requests).
  function renderEvent(v, e, old) {
    switch (e.kind) {
      case 'stream_end':
        if (!old && v.live) {
          cancelLive(v);
          renderLive(v);
          v.live.classList.remove('streaming');
          v.live.removeAttribute('aria-busy');
        }
        return item(e, 'marker hidden-marker');
      case 'text':
        if (e.role === 'user') {
          return item(e, 'text user', el('div', { class: 'label' }, 'You'), el('div', { class: 'body' }, e.content || ''),
            sentAttachments(v, e.attachments));
        }
        if (!old) endLive(v);
        return item(e, 'text assistant', el('div', { class: 'label' }, 'Assistant'),
          el('div', { class: 'body markdown' }, markdown(e.content || '')));
      case 'thinking':
        return item(e, 'thinking', el('details', {},
          el('summary', {}, 'Thinking'), el('div', { class: 'body' }, e.content || '')));
      case 'tool_use': {
        const kind = toolKind(e.toolName);
        const node = item(e, 'tool-use' + (kind ? ' tool-' + kind : ''), ...toolBody(e));
        node.dataset.toolName = e.toolName || 'tool';
        if (kind) node.dataset.tool = kind;
        if (e.toolId) v.tools.set(e.toolId, node);
        return node;
      }
      case 'tool_result': {
        const use = e.toolId && v.tools.get(e.toolId);
        const name = use ? use.dataset.toolName : 'tool';
        const kind = use ? toolKind(name) : '';
        const text = asText(e.content);
        const count = lines(text).length;
        const label = (e.isError ? 'Error from ' : (kind === 'bash' ? 'Output of ' : 'Result of ')) + name;
        const node = item(e, 'tool-result' + (e.isError ? ' error' : '') + (kind ? ' tool-' + kind : ''),
          foldable(label, count, el('pre', { class: 'code' }, text), e.isError ? true : undefined));
        if (count > LONG_LINES) node.classList.add('long');
        if (!use && e.toolId) v.orphans.set(e.toolId, e); // its tool_use may be on an older page
        return node;
      }
      case 'error':
        return item(e, 'error', el('div', { class: 'label' }, 'Error'), el('div', { class: 'body' }, asText(e.content)));
      case 'status': {
        const tb = e.tokenBudget;
        let text = e.text || 'status';
        if (tb) {
          text = 'Tokens: ' + (tb.used !== undefined ? tb.used : '?') + (tb.total ? ' / ' + tb.total : '') +
            (tb.inputTokens !== undefined ? ' (in ' + tb.inputTokens + ', out ' + tb.outputTokens + ')' : '');
        }
        return item(e, 'marker status', text);
      }
      case 'run_started':
        if (!old) {
          v.running = true;
          v.runId = e.runId;
        }
        return item(e, 'marker run-started', 'Run started');
      case 'permission_request': {
        if (!old) return permissionCard(v, e);
        const input = e.input !== undefined ? e.input : e.toolInput;
        const card = item(e, 'permission resolved', el('div', { class: 'label' }, 'Permission request'),
          el('p', {}, 'Allow ', el('strong', {}, e.toolName || 'tool'), '?'),
          el('pre', { class: 'code' }, asText(input)), el('p', { class: 'perm-outcome' }, 'Answered'));
        card.dataset.requestId = e.requestId;
        old.set(e.requestId, card);
        return card;
      }
      case 'permission_resolved':
      case 'permission_cancelled': {
        const allowText = e.allow ? 'Allowed' : 'Denied';
        const outcome = e.kind === 'permission_resolved' ? allowText : 'Withdrawn' + (e.reason ? ' (' + e.reason + ')' : '');
        if (old) {
          const card = old.get(e.requestId);
          if (card) card.querySelector('.perm-outcome').textContent = outcome;
        } else {
          closePermission(v, e.requestId, outcome, true);
        }
        return item(e, 'marker', e.kind === 'permission_resolved'
          ? (e.allow ? 'Permission allowed' : 'Permission denied')
          : 'Permission request withdrawn' + (e.reason ? ': ' + e.reason : ''));
      }
      case 'complete': {
        if (!old) {
          endLiveKeep(v);
          for (const id of [...v.perms.keys()]) closePermission(v, id, 'Expired with the run');
          v.running = false;
          v.lastComplete = e;
        }
        const what = e.aborted ? 'Aborted' : e.success ? 'Done' : 'Failed';
        return item(e, 'marker complete ' + (e.aborted ? 'aborted' : e.success ? 'done' : 'failed'),
          what + ' (exit ' + e.exitCode + (e.reason ? ', ' + e.reason : '') + ')');
      }
      default:
        return item(e, 'marker', e.kind);
    }
  }

  function applyEvent(v, e) {
    const list = $('messages');
    if (e.kind === 'stream_delta') {
      if (!v.live) {
        v.liveText = '';
        v.live = el('li', { class: 'msg text assistant streaming', 'aria-busy': 'true' },
          el('div', { class: 'label' }, 'Assistant'), el('div', { class: 'body markdown' }));
        list.append(v.live);
      }
      v.liveText += e.content || '';
      scheduleLive(v);
      return;
    }
    const node = renderEvent(v, e, null);
    if (v.oldest === null) v.oldest = e.seq;
    list.append(node);
    scrollDown(e.kind === 'text' && e.role === 'user');
  }

  // A run that ended while streaming keeps the text it showed, as a plain message.
  function endLiveKeep(v) {
    if (v.live) {
      cancelLive(v);
      renderLive(v);
      v.live.classList.remove('streaming');
      v.live.removeAttribute('aria-busy');
      v.live.classList.add('unsaved');
      v.live = null;
    }
  }

  function apply(v, events) {
    for (const e of events) {
      if (typeof e.seq !== 'number' || e.seq <= v.cursor) continue;
      v.cursor = e.seq;
      applyEvent(v, e);
    }
    renderHeader();
  }

  // History after v.cursor, oldest first, in pages.
  async function fetchHistory(v, signal) {
    for (;;) {
      const r = await api('GET', '/sessions/' + encodeURIComponent(v.sid) + '/messages?limit=1000&afterSeq=' + v.cursor, undefined, signal);
      if (state.view !== v) return;
      const before = v.cursor;
      apply(v, r.messages || []);
      if (!r.hasMore || v.cursor === before) return;
    }
  }

  // Opening a session shows its latest page of history (beforeSeq alone pages backwards
  // from the newest); "Load older" prepends the page before the oldest one shown.
  const PAGE = 200;
  const NEWEST = Number.MAX_SAFE_INTEGER;

  function messagesPath(v, query) {
    return '/sessions/' + encodeURIComponent(v.sid) + '/messages?limit=' + PAGE + '&' + query;
  }

  async function fetchLatest(v, signal) {
    const r = await api('GET', messagesPath(v, 'beforeSeq=' + NEWEST), undefined, signal);
    if (state.view !== v) return;
    const msgs = r.messages || [];
    v.hasOlder = !!r.hasMore;
    apply(v, msgs);
    if (msgs.length) v.oldest = msgs[0].seq;
    renderOlder(v);
    scrollDown(true);
  }

  // The first <li> of the list: the "Load older" button while there is more.
  function renderOlder(v) {
    const list = $('messages');
    let li = $('older');
    if (!v.hasOlder || !v.oldest) { if (li) li.remove(); return; }
    if (!li) {
      li = el('li', { id: 'older', class: 'older' },
        el('button', { type: 'button', id: 'load-older', class: 'ghost', onclick: loadOlder }, 'Load older messages'));
    }
    if (list.firstChild !== li) list.prepend(li);
    const b = li.querySelector('button');
    b.disabled = v.loadingOlder;
    b.textContent = v.loadingOlder ? 'Loading…' : 'Load older messages';
  }

  async function loadOlder() {
    const v = state.view;
    if (!v || !v.hasOlder || v.loadingOlder || !v.oldest) return;
    v.loadingOlder = true;
    renderOlder(v);
    try {
      const r = await api('GET', messagesPath(v, 'beforeSeq=' + v.oldest));
      if (state.view !== v) return;
      const msgs = (r.messages || []).filter((m) => typeof m.seq === 'number' && m.seq < v.oldest);
      const frag = document.createDocumentFragment();
      const perms = new Map();
      for (const e of msgs) frag.append(renderEvent(v, e, perms));
      // Keep what the reader looks at in place: the list grows above it by exactly the
      // height of what was inserted.
      const list = $('messages');
      const before = list.scrollHeight;
      const top = list.scrollTop;
      const older = $('older');
      list.insertBefore(frag, older ? older.nextSibling : list.firstChild);
      list.scrollTop = top + (list.scrollHeight - before);
      // Results whose tool_use was on this page now know its name.
      for (const [id, e] of [...v.orphans]) {
        const li = v.tools.has(id) && list.querySelector('li.tool-result[data-seq="' + e.seq + '"]');
        if (!li) continue;
        v.orphans.delete(id);
        li.replaceWith(renderEvent(v, e, perms));
      }
      if (msgs.length) v.oldest = msgs[0].seq;
      v.hasOlder = !!r.hasMore && msgs.length > 0;
    } catch (e) {
      banner('Cannot load older messages: ' + e.message);
    } finally {
      v.loadingOlder = false;
      if (state.view === v) renderOlder(v);
    }
  }

  // ---- the poll loop ----------------------------------------------------------------------
  function restartPoll() {
    if (state.poll) state.poll.abort();
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  // What a subscription needs first: the feed's cursor and the open session's latest page.
  async function prepare(v, ctl) {
    if (state.feedSeq === null) {
      const r = await api('POST', '/chat/subscribe', { feed: 0, waitMs: 0 }, ctl.signal);
      state.feedSeq = r.feedSeq || 0;
      await reloadSessions();
    }
    if (v && !v.loaded) {
      try {
        await api('GET', '/sessions/' + encodeURIComponent(v.sid), undefined, ctl.signal).then((r) => {
          state.sessions.set(r.session.id, r.session);
        });
      } catch (e) {
        if (e.code === 'SESSION_NOT_FOUND') { banner('No such session.'); location.hash = ''; closeView(); return false; }
        throw e;
      }
      await fetchLatest(v, ctl.signal);
      v.loaded = true;
      renderSessions();
    }
    return true;
  }

  async function pollOnce() {
    const v = state.view;
    const ctl = new AbortController();
    state.poll = ctl;
    if (!(await prepare(v, ctl))) return;
    const body = { waitMs: WAIT_MS, feed: state.feedSeq };
    if (v) body.sessions = [{ sessionId: v.sid, lastSeq: v.cursor }];
    const r = await api('POST', '/chat/subscribe', body, ctl.signal);
    if (typeof r.feedSeq === 'number') state.feedSeq = r.feedSeq;
    if (r.feedTruncated) await reloadSessions();
    let feedChanged = false;
    let stale = [];
    const events = [];
    for (const f of r.frames || []) {
      if (f.kind === 'session_upserted') { applyFeedFrame(f); feedChanged = true; } else if (f.kind === 'chat_subscribed') {
        if (v && state.view === v && f.sessionId === v.sid) stale = await ack(v, f, ctl.signal);
      } else if (v && f.sessionId === v.sid) {
        events.push(f);
      }
    }
    if (v && state.view === v) {
      apply(v, events);
      for (const id of stale) closePermission(v, id, 'Answered elsewhere');
    }
    if (feedChanged) renderSessions();
  }

  // ---- the event stream ---------------------------------------------------------------
  // GET /chat/stream carries each event as it is published, one SSE event per frame
  // named after its kind (EventSource needs a listener per name). EventSource cannot send
  // Authorization: a subscribe ticket (POST /auth/ticket) goes in the URL. A dropped
  // stream is reconnected by EventSource itself with Last-Event-ID (the cursors after the
  // last event read), so it resumes exactly; when that fails too (the ticket expired, a
  // 4xx/5xx, the network is gone) the page closes it and opens a new one from its own
  // cursors with a new ticket, after the same backoff as a failed poll. Streams that end
  // before their first event STREAM_FAILS times in a row (a proxy that buffers or refuses
  // them) make the page long-poll for STREAM_PAUSE_MS before it tries again.
  const STREAM_KINDS = ['chat_subscribed', 'session_upserted', 'truncated', 'chat_stream_end',
    'protocol_error', 'run_started', 'text', 'thinking', 'tool_use', 'tool_result',
    'stream_delta', 'stream_end', 'error', 'status', 'permission_request',
    'permission_resolved', 'permission_cancelled', 'complete', 'message'];
  const STREAM_FAILS = 3;
  const STREAM_PAUSE_MS = 5 * 60 * 1000;
  // Heartbeats are comments, which EventSource hides: after this long without an event
  // the page asks GET /health whether the server is still there (a dead network can
  // leave a stream silent until TCP gives up).
  const STREAM_QUIET_MS = 40000;

  function canStream() {
    return typeof EventSource === 'function' && Date.now() >= state.pollUntil;
  }

  function setTransport(t) { $('conn').dataset.transport = t; }

  function streamUrl(v, ticket) {
    const q = new URLSearchParams();
    if (v) { q.append('sessionId', v.sid); q.append('lastSeq', String(v.cursor)); }
    q.append('feed', String(state.feedSeq));
    q.append('ticket', ticket);
    return API + '/chat/stream?' + q.toString();
  }

  // One stream, until it ends (resolves: open the next one at once) or fails (throws:
  // the loop backs off). Frames are handled one after the other, in arrival order, even
  // when one of them waits for history (a truncated cursor).
  async function streamOnce() {
    const v = state.view;
    const ctl = new AbortController();
    state.poll = ctl;
    if (!(await prepare(v, ctl))) return;
    const t = await api('POST', '/auth/ticket', {}, ctl.signal);
    if (ctl.signal.aborted) throw new DOMException('aborted', 'AbortError');
    setTransport('stream');
    await new Promise((resolve, reject) => {
      const es = new EventSource(streamUrl(v, t.ticket));
      let chain = Promise.resolve();
      let got = false;
      let quiet = null;
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        es.close();
        clearTimeout(quiet);
        window.removeEventListener('offline', offline);
        ctl.signal.removeEventListener('abort', aborted);
        // What was queued is applied before the next subscription starts.
        chain.then(() => (err ? reject(err) : resolve()), reject);
      };
      const aborted = () => finish(new DOMException('aborted', 'AbortError'));
      const offline = () => finish(new Error('offline'));
      const watch = () => {
        clearTimeout(quiet);
        quiet = setTimeout(async () => {
          try {
            const r = await fetch(API + '/health', { cache: 'no-store', signal: AbortSignal.timeout(10000) });
            if (!r.ok) throw new Error('HTTP ' + r.status);
            watch();
          } catch (e) {
            finish(new Error('no answer from the server'));
          }
        }, STREAM_QUIET_MS);
      };
      const onFrame = (m) => {
        let f;
        try { f = JSON.parse(m.data); } catch (e) { return; }
        if (!got) { got = true; state.streamFails = 0; state.backoff = 0; connState(''); }
        watch();
        chain = chain.then(() => streamFrame(v, f, ctl.signal, finish)).catch((e) => finish(e));
      };
      for (const k of STREAM_KINDS) es.addEventListener(k, onFrame);
      es.onerror = () => {
        // CONNECTING: EventSource retries by itself with Last-Event-ID; it says so.
        if (es.readyState === EventSource.CONNECTING && got) {
          connState('Connection problem; reconnecting');
          return;
        }
        if (!got && ++state.streamFails >= STREAM_FAILS) {
          state.streamFails = 0;
          state.pollUntil = Date.now() + STREAM_PAUSE_MS;
        }
        finish(new Error('the event stream failed'));
      };
      ctl.signal.addEventListener('abort', aborted);
      window.addEventListener('offline', offline);
      watch();
    });
  }

  async function streamFrame(v, f, signal, finish) {
    if (f.kind === 'session_upserted') {
      applyFeedFrame(f);
      if (typeof f.feedSeq === 'number') state.feedSeq = f.feedSeq;
      renderSessions();
    } else if (f.kind === 'truncated') {
      // Events after a cursor left the live buffer: fill the hole from history (the
      // feed: reload the list).
      if (f.feed) { await reloadSessions(); renderSessions(); } else if (v && state.view === v && f.sessionId === v.sid) await fetchHistory(v, signal);
    } else if (f.kind === 'chat_subscribed') {
      if (v && state.view === v && f.sessionId === v.sid) {
        const stale = await ack(v, f, signal);
        for (const id of stale) closePermission(v, id, 'Answered elsewhere');
        renderHeader();
      }
    } else if (f.kind === 'chat_stream_end') {
      finish(null); // the server's maximum duration: a new stream from our cursors
    } else if (f.kind === 'protocol_error') {
      finish(new ApiError(401, f)); // token revoked: the next ticket request says 401
    } else if (v && state.view === v && f.sessionId === v.sid) {
      apply(v, [f]);
    }
  }

  async function ack(v, f, signal) {
    if (!f.found) { banner('No such session.'); return []; }
    if (f.truncated) {
      // Events after our cursor left the live buffer: fill the hole from history.
      await fetchHistory(v, signal);
    }
    v.running = !!f.isProcessing;
    if (f.runId) v.runId = f.runId;
    // Requests open here but no longer pending were answered (or withdrawn) elsewhere;
    // the events of this answer usually say how, so they are closed after those.
    const pending = new Set((f.pendingPermissions || []).map((p) => p.requestId));
    return [...v.perms.keys()].filter((id) => !pending.has(id));
  }

  async function pollLoop() {
    for (;;) {
      if (!state.authed) { await sleep(500); continue; }
      try {
        if (canStream()) {
          await streamOnce();
        } else {
          setTransport('poll');
          await pollOnce();
        }
        state.backoff = 0;
        connState('');
      } catch (e) {
        if (e.name === 'AbortError') continue; // switched session or logged out
        if (!state.authed) continue;
        // Network lost, server restarting, 429, 503, a failed stream: back off
        // exponentially, then subscribe again from the same cursor.
        state.backoff = Math.min(state.backoff ? state.backoff * 2 : 500, 30000);
        const wait = state.backoff / 2 + Math.random() * state.backoff / 2;
        connState('Connection problem (' + e.message + '); retrying in ' + Math.round(wait / 1000) + ' s');
        await sleep(wait);
      }
    }
  }


  // ---- attachments ------------------------------------------------------------------
  // Pasted, dropped or picked files are uploaded at once (POST
  // {API}/sessions/{id}/attachments?name=..., the raw file with its type) and wait in the
  // composer (v.draft: {file, att, node, upload, objUrl}) as a thumbnail (an image: a
  // blob: URL of the local file) or a chip until the send carries their ids
  // (options.attachments); × deletes one. A user message shows the attachments it
  // carried; their bytes need the token, which an <img src> cannot send, so the page
  // fetches them and shows blob: URLs (cached per attachment id).
  const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
  const blobs = new Map(); // attachment id -> Promise of an object URL

  function attUrl(sid, id) {
    return API + '/sessions/' + encodeURIComponent(sid) + '/attachments/' + encodeURIComponent(id);
  }

  function fmtSize(n) {
    if (!(n >= 0)) return '';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KB';
    return (n / 1024 / 1024).toFixed(1) + ' MB';
  }

  async function authFetch(url) {
    const headers = {};
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const r = await fetch(url, { headers, cache: 'no-store' });
    if (!r.ok) {
      let json = null;
      try { json = await r.json(); } catch (e) { json = null; }
      throw new ApiError(r.status, json);
    }
    return r.blob();
  }

  // Logging out forgets the fetched attachments (another user may log in next).
  function forgetBlobs() {
    for (const p of blobs.values()) p.then((u) => URL.revokeObjectURL(u), () => {});
    blobs.clear();
  }

  function blobUrl(sid, a) {
    if (!blobs.has(a.id)) {
      const p = authFetch(attUrl(sid, a.id)).then((b) => URL.createObjectURL(b));
      p.catch(() => blobs.delete(a.id)); // a later render tries again
      blobs.set(a.id, p);
    }
    return blobs.get(a.id);
  }

  async function download(sid, a) {
    try {
      const url = await blobUrl(sid, a);
      const link = el('a', { href: url, download: a.name || 'attachment' });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (e) {
      banner('Cannot fetch ' + (a.name || 'the attachment') + ': ' + e.message);
    }
  }

  function chip(a, extra) {
    return [el('span', { class: 'att-name', title: a.name }, a.name || 'attachment'),
      el('span', { class: 'att-size' }, fmtSize(a.size)), extra];
  }

  // The attachments a user message carried: images as thumbnails, other files as chips
  // (a click downloads them).
  function sentAttachments(v, list) {
    if (!Array.isArray(list) || !list.length) return null;
    return el('ul', { class: 'attachments' }, ...list.map((a) => {
      if (IMAGE_TYPES.includes(a.mimeType)) {
        const img = el('img', { alt: a.name || 'image', title: (a.name || '') + ' · ' + fmtSize(a.size) });
        blobUrl(v.sid, a).then((u) => { img.src = u; }, () => { img.alt = (a.name || 'image') + ' (cannot be loaded)'; });
        return el('li', { class: 'attachment image', dataset: { id: a.id } },
          el('button', { type: 'button', class: 'ghost', title: 'Open ' + (a.name || 'the image'), onclick: () => blobUrl(v.sid, a).then((u) => window.open(u, '_blank', 'noopener')) }, img));
      }
      return el('li', { class: 'attachment file', dataset: { id: a.id } },
        ...chip(a, el('button', { type: 'button', class: 'ghost', title: 'Download', onclick: () => download(v.sid, a) }, '⤓')));
    }));
  }

  function renderDraft(v) {
    if (state.view !== v) return;
    const ul = $('attachments');
    ul.replaceChildren(...v.draft.map((d) => d.node));
    ul.hidden = !v.draft.length;
  }

  function removeDraft(v, d, remote) {
    const i = v.draft.indexOf(d);
    if (i >= 0) v.draft.splice(i, 1);
    if (d.objUrl) URL.revokeObjectURL(d.objUrl);
    if (remote && d.att) {
      api('DELETE', '/sessions/' + encodeURIComponent(v.sid) + '/attachments/' + encodeURIComponent(d.att.id))
        .catch((e) => { if (e.code !== 'ATTACHMENT_NOT_FOUND' && e.code !== 'SESSION_NOT_FOUND') banner('Cannot remove the attachment: ' + e.message); });
    }
    renderDraft(v);
  }

  // Leaving a session: what was uploaded for a prompt never sent is deleted.
  function dropDraft(v) {
    if (!v) return;
    for (const d of [...v.draft]) removeDraft(v, d, true);
    $('attachments').replaceChildren();
    $('attachments').hidden = true;
  }

  function attach(files) {
    const v = state.view;
    if (!v) return;
    for (const file of files) {
      const type = file.type || 'application/octet-stream';
      const name = file.name || (type.startsWith('image/') ? 'pasted.' + type.slice(6).replace(/\W.*$/, '') : 'attachment');
      const d = { file, att: null, objUrl: null };
      const remove = el('button', { type: 'button', class: 'ghost remove', title: 'Remove ' + name, 'aria-label': 'Remove ' + name, onclick: () => removeDraft(v, d, true) }, '×');
      if (IMAGE_TYPES.includes(type)) {
        d.objUrl = URL.createObjectURL(file);
        d.node = el('li', { class: 'attachment image uploading', title: name + ' · ' + fmtSize(file.size) },
          el('img', { src: d.objUrl, alt: name }), remove);
      } else {
        d.node = el('li', { class: 'attachment file uploading' }, ...chip({ name, size: file.size }, remove));
      }
      d.upload = (async () => {
        try {
          const headers = { 'Content-Type': type };
          if (state.token) headers.Authorization = 'Bearer ' + state.token;
          const r = await fetch(API + '/sessions/' + encodeURIComponent(v.sid) + '/attachments?name=' + encodeURIComponent(name),
            { method: 'POST', headers, body: file, cache: 'no-store' });
          let json = null;
          try { json = await r.json(); } catch (e) { json = null; }
          if (r.status === 401) { logout('Your token was not accepted.'); throw new ApiError(401, json); }
          if (!r.ok) throw new ApiError(r.status, json);
          d.att = json.attachment;
          d.node.dataset.id = d.att.id;
          d.node.classList.remove('uploading');
          if (!v.draft.includes(d)) removeDraft(v, d, true); // removed while uploading
        } catch (e) {
          removeDraft(v, d, false);
          banner('Cannot attach ' + name + ': ' + e.message);
        }
      })();
      v.draft.push(d);
    }
    renderDraft(v);
  }

  // Files of a paste or a drop (a screenshot is a file of the clipboard).
  function transferFiles(dt) {
    if (!dt) return [];
    const files = [...(dt.files || [])];
    if (!files.length) {
      for (const it of dt.items || []) {
        const f = it.kind === 'file' ? it.getAsFile() : null;
        if (f) files.push(f);
      }
    }
    return files;
  }

  // ---- actions ----------------------------------------------------------------------------
  async function send(ev) {
    ev.preventDefault();
    const v = state.view;
    const text = $('prompt').value;
    if (!v || !text.trim()) return;
    const body = { sessionId: v.sid, content: text };
    const options = {};
    const mode = $('perm-mode');
    if (!mode.hidden && mode.value && mode.value !== 'default') options.permissionMode = mode.value;
    // The run shows as running when its run_started event arrives (it may even have
    // ended before this answer does); until then only the button is held.
    v.sending = true;
    renderHeader();
    try {
      // Uploads still under way are waited for; those that failed are already gone.
      await Promise.all(v.draft.map((d) => d.upload));
      const sent = v.draft.filter((d) => d.att);
      if (sent.length) options.attachments = sent.map((d) => d.att.id);
      if (Object.keys(options).length) body.options = options;
      await api('POST', '/chat/send', body);
      if ($('prompt').value === text) $('prompt').value = '';
      // The attachments went with the prompt: the composer forgets them (the
      // transcript's user message shows them from now on).
      for (const d of sent) removeDraft(v, d, false);
    } catch (e) {
      banner('Cannot send: ' + e.message);
    }
    v.sending = false;
    if (state.view === v) renderHeader();
  }

  async function abort() {
    const v = state.view;
    if (!v) return;
    $('abort').disabled = true;
    try {
      await api('POST', '/chat/abort', { sessionId: v.sid });
    } catch (e) {
      if (e.code !== 'NO_ACTIVE_RUN') banner('Cannot abort: ' + e.message);
    }
    $('abort').disabled = false;
  }

  async function patchSession(body) {
    const v = state.view;
    if (!v) return;
    try {
      const r = await api('PATCH', '/sessions/' + encodeURIComponent(v.sid), body);
      state.sessions.set(r.session.id, r.session);
      renderSessions();
    } catch (e) {
      banner('Cannot change the session: ' + e.message);
    }
  }

  async function deleteSession() {
    const v = state.view;
    if (!v || !confirm('Delete this session and its history?')) return;
    try {
      await api('DELETE', '/sessions/' + encodeURIComponent(v.sid));
      state.sessions.delete(v.sid);
      location.hash = '';
    } catch (e) {
      banner('Cannot delete: ' + e.message);
    }
  }

  // ---- remembered rules (GET /rules, DELETE /rules/{id}) ------------------------------
  async function loadRules() {
    const list = $('rule-list');
    if (!list) return;
    try {
      const r = await api('GET', '/rules');
      list.replaceChildren(...(r.rules.length ? r.rules.map((x) => el('li', { class: 'rule' },
        el('code', {}, x.rule), el('span', { class: 'meta' }, ' ' + x.projectPath + ' '),
        el('button', {
          type: 'button', class: 'ghost', title: 'Forget this rule: the next such use asks again',
          onclick: () => api('DELETE', '/rules/' + x.id).then(loadRules, (e) => banner('Cannot revoke: ' + e.message)),
        }, 'Revoke'))) : [el('li', { class: 'none' }, 'No remembered rules.')]));
    } catch (e) {
      banner('Cannot list rules: ' + e.message);
    }
  }

  // ---- wiring -------------------------------------------------------------------------------
  if ($('rules-panel')) $('rules-panel').addEventListener('toggle', (ev) => { if (ev.target.open) loadRules(); });
  $('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    $('token-input').value = '';
    if (t) login(t);
  });
  $('logout').addEventListener('click', () => logout(''));
  $('new-session-form').addEventListener('submit', createSession);
  $('show-archived').addEventListener('change', () => reloadSessions().catch((e) => banner(e.message)));
  $('session-search').addEventListener('input', renderSessions);
  $('session-search').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.target.value = ''; renderSessions(); }
  });
  $('composer').addEventListener('submit', send);
  $('prompt').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('prompt').addEventListener('paste', (ev) => {
    const files = transferFiles(ev.clipboardData);
    if (!files.length) return; // text: the textarea's own paste
    ev.preventDefault();
    attach(files);
  });
  $('composer').addEventListener('dragover', (ev) => {
    if (!ev.dataTransfer || ![...ev.dataTransfer.types].includes('Files')) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'copy';
    $('composer').classList.add('dragging');
  });
  $('composer').addEventListener('dragleave', () => $('composer').classList.remove('dragging'));
  $('composer').addEventListener('drop', (ev) => {
    $('composer').classList.remove('dragging');
    const files = transferFiles(ev.dataTransfer);
    if (!files.length) return;
    ev.preventDefault();
    attach(files);
  });
  $('attach').addEventListener('click', () => $('attach-input').click());
  $('attach-input').addEventListener('change', (ev) => {
    attach([...ev.target.files]);
    ev.target.value = '';
  });
  $('abort').addEventListener('click', abort);
  $('archive').addEventListener('click', () => {
    const s = state.view && state.sessions.get(state.view.sid);
    patchSession({ archived: !(s && s.archived) });
  });
  $('delete').addEventListener('click', deleteSession);
  $('session-name').addEventListener('change', (ev) => patchSession({ name: ev.target.value.trim() }));
  $('session-name').addEventListener('keydown', (ev) => { if (ev.key === 'Enter') ev.target.blur(); });
  window.addEventListener('hashchange', openFromHash);

  // Without a stored token, the web server may have authenticated us already
  // (auth.trust_remote_user): then the API answers without a token.
  if (state.token) {
    login(state.token);
  } else {
    fetch(API + '/providers', { cache: 'no-store' })
      .then((r) => (r.ok ? login('') : showLogin('')))
      .catch(() => showLogin(''));
  }
})();
