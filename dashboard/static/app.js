// phalanx dashboard. Everything shown here comes from the member's API,
// and much of it (evidence lines, scenario names, reasons) is written by
// attackers or other members: it is put on the page with textContent and
// attributes only, never parsed as HTML.
'use strict';
(function () {
  const KEY = 'phalanx.token';
  const $ = (id) => document.getElementById(id);
  let token = '';
  let streamAbort = null;
  let decisionsTimer = 0;

  // el builds an element; children are nodes or strings (as text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function replaceRows(tbody, rows) { tbody.replaceChildren(...rows); }
  function ago(t) {
    const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
    if (!isFinite(s) || new Date(t).getFullYear() < 2000) return 'never';
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }
  function clock(t) { return new Date(t).toLocaleTimeString(); }

  // The token: from a #token= fragment (the demo's link), else from
  // localStorage, else asked for. The fragment is removed at once so it
  // does not stay in the address bar or the history.
  function readToken() {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      localStorage.setItem(KEY, decodeURIComponent(m[1]));
      history.replaceState(null, '', location.pathname + location.search);
    }
    return localStorage.getItem(KEY) || '';
  }
  function askToken(msg) {
    $('auth').hidden = false;
    $('token-forget').hidden = true;
    $('auth-msg').textContent = msg || '';
    setConn(false);
  }
  function setConn(on) {
    $('conn').textContent = on ? 'live' : 'offline';
    $('conn').className = on ? 'on' : 'off';
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    const data = await res.json().catch(() => null);
    if (res.status === 401) {
      askToken(token ? 'wrong token: paste the one in the data directory\'s api.token (or api.readonly to only look)' : 'token needed');
      throw new Error('not authorized');
    }
    if (!res.ok) throw new Error((data && data.error) || ('HTTP ' + res.status));
    return data;
  }

  // Members, with health from heartbeats and lag against this member's
  // applied ledger position.
  async function loadMembers() {
    const [health, members] = await Promise.all([api('GET', '/v1/health'), api('GET', '/v1/members')]);
    $('who').textContent = health.member + ' · ' + health.decisions + ' decisions · ledger ' + health.applied;
    replaceRows($('members').tBodies[0], (members || []).map((m) => {
      const self = m.id === health.member;
      const age = (Date.now() - new Date(m.last_heartbeat).getTime()) / 1000;
      let state = 'ok';
      if (m.expelled) state = 'expelled';
      else if (m.flagged) state = 'flagged';
      else if (self ? !health.connected : !(age < 35)) state = self ? 'disconnected' : 'late';
      const lag = self ? 0 : Math.max(0, health.applied - (m.applied || 0));
      return el('tr', { 'data-member': m.id },
        el('td', null, m.name + (self ? ' (this member)' : '')),
        el('td', null, String(m.id).slice(0, 12)),
        el('td', null, m.role + (m.council ? ', council' : '')),
        el('td', { class: state === 'disconnected' ? 'late' : state }, state + (m.flagged ? ': ' + m.flagged : '')),
        el('td', null, self ? '—' : ago(m.last_heartbeat)),
        el('td', null, self ? '0' : String(lag)));
    }));
  }

  async function loadDecisions() {
    const list = (await api('GET', '/v1/decisions')) || [];
    $('decision-count').textContent = '(' + list.length + ')';
    list.sort((a, b) => new Date(b.last_seen) - new Date(a.last_seen));
    replaceRows($('decisions').tBodies[0], list.slice(0, 500).map((d) => el('tr', { 'data-value': d.value },
      el('td', null, d.value),
      el('td', null, d.type),
      el('td', null, d.scenario),
      el('td', null, d.origin),
      el('td', null, (d.reporters || []).map((r) => String(r).slice(0, 12)).join(', ')),
      el('td', null, String(d.events)),
      el('td', null, clock(d.until)),
      el('td', { class: 'evidence' }, el('ul', null, ...(d.evidence || []).map((line) => el('li', null, line)))))));
    renderTop(list);
  }
  function scheduleDecisions() {
    // A burst of changes becomes one reload.
    clearTimeout(decisionsTimer);
    decisionsTimer = setTimeout(() => { loadDecisions().catch(() => {}); loadMembers().catch(() => {}); }, 200);
  }

  function renderTop(list) {
    const byEvents = list.slice().sort((a, b) => b.events - a.events).slice(0, 10);
    $('top-attackers').replaceChildren(...byEvents.map((d) =>
      el('li', null, d.value + ' — ' + d.events + ' events (' + d.scenario + ')')));
    const sc = new Map();
    for (const d of list) {
      const s = sc.get(d.scenario) || { n: 0, events: 0 };
      s.n++; s.events += d.events;
      sc.set(d.scenario, s);
    }
    const top = [...sc.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, 10);
    $('top-scenarios').replaceChildren(...top.map(([name, s]) =>
      el('li', null, name + ' — ' + s.n + ' decisions, ' + s.events + ' events')));
  }

  function addFeed(ev) {
    const ev0 = (ev.evidence || [])[0];
    const li = el('li', { class: ev.op },
      clock(Date.now()) + ' ' + ev.op + ' ' + ev.type + ' ' + ev.value + ' · ' + ev.scenario + ' · ' + ev.origin +
      (ev.reporters && ev.reporters.length ? ' · reported by ' + ev.reporters.length : '') +
      (ev0 ? ' · ' + ev0 : ''));
    const feed = $('feed');
    feed.prepend(li);
    while (feed.children.length > 200) feed.lastChild.remove();
  }

  function renderCeasefires(list) {
    replaceRows($('ceasefires').tBodies[0], (list || []).map((c) => {
      const end = el('button', { type: 'button', class: 'cf-end', 'data-id': c.id }, 'End');
      end.addEventListener('click', () => endCeasefire(c.id));
      return el('tr', { 'data-id': c.id },
        el('td', null, c.id), el('td', null, clock(c.until)), el('td', null, c.scenario || 'every'),
        el('td', null, c.scope || 'every'), el('td', null, c.reason), el('td', null, end));
    }));
  }

  // The time-to-protect chart: the slowest member's confirmation per
  // drill, oldest to newest, as an inline SVG built node by node.
  function renderDrills(drills) {
    const NS = 'http://www.w3.org/2000/svg';
    const W = 560, H = 140, P = 28;
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('width', '100%');
    const pts = (drills || []).filter((d) => d.members.length > 0);
    const text = (x, y, s) => { const t = document.createElementNS(NS, 'text'); t.setAttribute('x', x); t.setAttribute('y', y); t.textContent = s; svg.append(t); };
    if (pts.length === 0) {
      text(P, H / 2, 'no drills yet: run one');
    } else {
      const top = Math.max(1, ...pts.map((d) => d.max_ms));
      const x = (i) => P + (pts.length === 1 ? (W - 2 * P) / 2 : i * (W - 2 * P) / (pts.length - 1));
      const y = (v) => H - P + 10 - v / top * (H - P - 10);
      const line = document.createElementNS(NS, 'polyline');
      line.setAttribute('class', 'line');
      line.setAttribute('points', pts.map((d, i) => x(i) + ',' + y(d.max_ms)).join(' '));
      svg.append(line);
      pts.forEach((d, i) => {
        const c = document.createElementNS(NS, 'circle');
        c.setAttribute('class', 'dot'); c.setAttribute('cx', x(i)); c.setAttribute('cy', y(d.max_ms)); c.setAttribute('r', 3);
        const title = document.createElementNS(NS, 'title');
        title.textContent = clock(d.at) + ': ' + d.max_ms.toFixed(1) + ' ms, ' + d.members.length + ' members';
        c.append(title);
        svg.append(c);
      });
      text(2, 12, top.toFixed(1) + ' ms');
      text(2, H - 4, pts.length + ' drills, slowest member each');
    }
    $('ttp-chart').replaceChildren(svg);
  }

  async function startCeasefire(e) {
    e.preventDefault();
    $('cf-msg').textContent = '';
    try {
      const r = await api('POST', '/v1/ceasefire', {
        for: $('cf-for').value.trim(), scenario: $('cf-scenario').value.trim(),
        scope: $('cf-scope').value.trim(), reason: $('cf-reason').value.trim(),
      });
      $('cf-msg').textContent = 'ceasefire ' + r.ceasefire + ' until ' + clock(r.until);
    } catch (err) { $('cf-msg').textContent = err.message; }
  }
  async function endCeasefire(id) {
    try {
      await api('DELETE', '/v1/ceasefire?id=' + encodeURIComponent(id));
      $('cf-msg').textContent = 'ending ceasefire ' + id;
    } catch (err) { $('cf-msg').textContent = err.message; }
  }
  async function drill() {
    $('drill-result').textContent = 'running…';
    try {
      const r = await api('POST', '/v1/drill');
      $('drill-result').textContent = 'p50 ' + r.p50_ms + ' ms, p99 ' + r.p99_ms + ' ms, ' +
        r.members.filter((m) => m.ok).length + '/' + r.members.length + ' members protected';
    } catch (err) { $('drill-result').textContent = err.message; }
  }

  function dispatch(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    const v = JSON.parse(data.join('\n'));
    if (name === 'decision') { addFeed(v); scheduleDecisions(); }
    else if (name === 'state') { renderCeasefires(v.ceasefires); renderDrills(v.drills); }
    else if (name === 'resync') loadAll();
  }

  // The live feed: fetch with a streaming reader, because EventSource
  // cannot send the bearer header. It reconnects after a pause and
  // reloads the lists, which may have changed while it was away.
  async function stream(ctl) {
    while (!ctl.signal.aborted) {
      try {
        const res = await fetch('/v1/events', {
          headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' },
          cache: 'no-store', signal: ctl.signal,
        });
        if (res.status === 401) { askToken(token ? 'wrong token: paste the one in the data directory\'s api.token (or api.readonly to only look)' : 'token needed'); return; }
        if (!res.ok) throw new Error('HTTP ' + res.status);
        setConn(true);
        $('auth').hidden = true;
        $('token-forget').hidden = false;
        loadAll();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            try { dispatch(block); } catch (err) { console.error(err); }
          }
        }
      } catch (err) {
        if (ctl.signal.aborted) return;
      }
      setConn(false);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  function loadAll() {
    loadMembers().catch(() => {});
    loadDecisions().catch(() => {});
  }

  function connect() {
    if (streamAbort) streamAbort.abort();
    streamAbort = new AbortController();
    stream(streamAbort);
  }

  $('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    token = $('token').value.trim();
    $('token').value = '';
    if (!token) return;
    localStorage.setItem(KEY, token);
    connect();
  });
  $('token-forget').addEventListener('click', () => {
    localStorage.removeItem(KEY);
    token = '';
    if (streamAbort) streamAbort.abort();
    askToken('');
  });
  $('cf-form').addEventListener('submit', startCeasefire);
  $('drill').addEventListener('click', drill);
  setInterval(() => { if (token) loadMembers().catch(() => {}); }, 10000);

  token = readToken();
  if (token) connect(); else askToken('');
})();
