// chatgw reference web UI: plain JavaScript, no build step, same origin only.
//
// One loop long-polls POST /chat/subscribe for the open session (with its cursor,
// lastSeq) and for the caller's session feed (feedSeq). Every event is applied once:
// anything with seq <= cursor is dropped, so replays after a reload, a lost network or
// a `truncated` hole filled from history never double a message. Event text always
// goes through textContent, never innerHTML.
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
    poll: null,          // AbortController of the request in flight
    backoff: 0,
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
    const items = [...state.sessions.values()]
      .filter((s) => showArchived || !s.archived)
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
    if (!items.length) list.append(el('li', { class: 'none' }, 'No sessions yet.'));
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
    }
  }

  function openFromHash() {
    const m = /^#\/s\/(.+)$/.exec(location.hash);
    const sid = m ? decodeURIComponent(m[1]) : null;
    if (state.view && state.view.sid === sid) return;
    if (!sid) { closeView(); return; }
    state.view = new View(sid);
    $('messages').replaceChildren();
    $('empty').hidden = true;
    $('session-view').hidden = false;
    renderSessions();
    restartPoll();
  }

  function closeView() {
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
      el('pre', { class: 'code' }, asText(input)),
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
    if (v.live) { v.live.remove(); v.live = null; }
  }

  function applyEvent(v, e) {
    const list = $('messages');
    let node = null;
    switch (e.kind) {
      case 'stream_delta':
        if (!v.live) {
          v.live = el('li', { class: 'msg text assistant streaming', 'aria-busy': 'true' },
            el('div', { class: 'label' }, 'Assistant'), el('div', { class: 'body' }));
          list.append(v.live);
        }
        v.live.querySelector('.body').append(document.createTextNode(e.content || ''));
        scrollDown();
        return;
      case 'stream_end':
        if (v.live) { v.live.classList.remove('streaming'); v.live.removeAttribute('aria-busy'); }
        node = item(e, 'marker hidden-marker');
        break;
      case 'text':
        if (e.role !== 'user') endLive(v);
        node = item(e, 'text ' + (e.role === 'user' ? 'user' : 'assistant'),
          el('div', { class: 'label' }, e.role === 'user' ? 'You' : 'Assistant'),
          el('div', { class: 'body' }, e.content || ''));
        break;
      case 'thinking':
        node = item(e, 'thinking', el('details', {},
          el('summary', {}, 'Thinking'), el('div', { class: 'body' }, e.content || '')));
        break;
      case 'tool_use':
        node = item(e, 'tool-use', el('div', { class: 'label' }, 'Tool: ', el('strong', {}, e.toolName || '?')),
          el('pre', { class: 'code' }, asText(e.toolInput)));
        if (e.toolId) v.tools.set(e.toolId, node);
        break;
      case 'tool_result': {
        const name = e.toolId && v.tools.get(e.toolId) ? v.tools.get(e.toolId).querySelector('strong').textContent : 'tool';
        node = item(e, 'tool-result' + (e.isError ? ' error' : ''), el('details', { open: e.isError },
          el('summary', {}, (e.isError ? 'Error from ' : 'Result of ') + name),
          el('pre', { class: 'code' }, asText(e.content))));
        break;
      }
      case 'error':
        node = item(e, 'error', el('div', { class: 'label' }, 'Error'), el('div', { class: 'body' }, asText(e.content)));
        break;
      case 'status': {
        const tb = e.tokenBudget;
        let text = e.text || 'status';
        if (tb) {
          text = 'Tokens: ' + (tb.used !== undefined ? tb.used : '?') + (tb.total ? ' / ' + tb.total : '') +
            (tb.inputTokens !== undefined ? ' (in ' + tb.inputTokens + ', out ' + tb.outputTokens + ')' : '');
        }
        node = item(e, 'marker status', text);
        break;
      }
      case 'run_started':
        v.running = true;
        v.runId = e.runId;
        node = item(e, 'marker run-started', 'Run started');
        break;
      case 'permission_request':
        node = permissionCard(v, e);
        break;
      case 'permission_resolved':
        closePermission(v, e.requestId, e.allow ? 'Allowed' : 'Denied', true);
        node = item(e, 'marker', (e.allow ? 'Permission allowed' : 'Permission denied'));
        break;
      case 'permission_cancelled':
        closePermission(v, e.requestId, 'Withdrawn' + (e.reason ? ' (' + e.reason + ')' : ''), true);
        node = item(e, 'marker', 'Permission request withdrawn' + (e.reason ? ': ' + e.reason : ''));
        break;
      case 'complete': {
        endLiveKeep(v);
        for (const id of [...v.perms.keys()]) closePermission(v, id, 'Expired with the run');
        v.running = false;
        v.lastComplete = e;
        const what = e.aborted ? 'Aborted' : e.success ? 'Done' : 'Failed';
        node = item(e, 'marker complete ' + (e.aborted ? 'aborted' : e.success ? 'done' : 'failed'),
          what + ' (exit ' + e.exitCode + (e.reason ? ', ' + e.reason : '') + ')');
        break;
      }
      default:
        node = item(e, 'marker', e.kind);
    }
    list.append(node);
    scrollDown(e.kind === 'text' && e.role === 'user');
  }

  // A run that ended while streaming keeps the text it showed, as a plain message.
  function endLiveKeep(v) {
    if (v.live) {
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

  // ---- the poll loop ----------------------------------------------------------------------
  function restartPoll() {
    if (state.poll) state.poll.abort();
  }

  const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

  async function pollOnce() {
    const v = state.view;
    const ctl = new AbortController();
    state.poll = ctl;
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
        if (e.code === 'SESSION_NOT_FOUND') { banner('No such session.'); location.hash = ''; closeView(); return; }
        throw e;
      }
      await fetchHistory(v, ctl.signal);
      v.loaded = true;
      renderSessions();
    }
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
        await pollOnce();
        state.backoff = 0;
        connState('');
      } catch (e) {
        if (e.name === 'AbortError') continue; // switched session or logged out
        if (!state.authed) continue;
        // Network lost, server restarting, 429, 503: back off exponentially, then poll
        // again from the same cursor.
        state.backoff = Math.min(state.backoff ? state.backoff * 2 : 500, 30000);
        const wait = state.backoff / 2 + Math.random() * state.backoff / 2;
        connState('Connection problem (' + e.message + '); retrying in ' + Math.round(wait / 1000) + ' s');
        await sleep(wait);
      }
    }
  }

  // ---- actions ----------------------------------------------------------------------------
  async function send(ev) {
    ev.preventDefault();
    const v = state.view;
    const text = $('prompt').value;
    if (!v || !text.trim()) return;
    const body = { sessionId: v.sid, content: text };
    const mode = $('perm-mode');
    if (!mode.hidden && mode.value && mode.value !== 'default') body.options = { permissionMode: mode.value };
    // The run shows as running when its run_started event arrives (it may even have
    // ended before this answer does); until then only the button is held.
    v.sending = true;
    renderHeader();
    try {
      await api('POST', '/chat/send', body);
      if ($('prompt').value === text) $('prompt').value = '';
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
  $('composer').addEventListener('submit', send);
  $('prompt').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $('composer').requestSubmit();
    }
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
