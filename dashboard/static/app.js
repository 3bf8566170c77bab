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

  // MAX_TEXT bounds any one piece of text put on the page: an evidence
  // line may be a megabyte an attacker chose.
  const MAX_TEXT = 300;
  // Characters that would act instead of show: C0/C1 controls (terminal
  // escapes), bidi overrides and isolates (which reorder what follows),
  // zero-width and other invisible format characters.
  const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/g;

  // visible makes attacker text safe to read: every invisible or
  // reordering character shown as \u{…}, cut to max characters with the
  // length said. It is always put on the page as text, never as markup.
  function visible(v, max) {
    let s = String(v);
    max = max || MAX_TEXT;
    let cut = '';
    if (s.length > max) {
      cut = '… (' + s.length.toLocaleString() + ' characters)';
      s = s.slice(0, max);
    }
    return s.replace(INVISIBLE, (c) => '\\u{' + c.charCodeAt(0).toString(16) + '}') + cut;
  }

  // el builds an element; children are nodes or strings (shown as text,
  // through visible).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(visible(c, 2 * MAX_TEXT)));
    }
    return e;
  }
  function plural(n, one, many) { return n.toLocaleString() + ' ' + (n === 1 ? one : (many || one + 's')); }
  // emptyRow is what a table shows when it has nothing: a sentence, not
  // a blank.
  function emptyRow(tbody, cols, text) {
    tbody.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: String(cols) }, text)));
  }
  function replaceRows(tbody, rows) { tbody.replaceChildren(...rows); }
  // span says a duration in the largest unit that fits.
  function span(s) {
    s = Math.abs(s);
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 2 * 86400) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' days';
  }
  function ago(t) {
    const s = (Date.now() - new Date(t).getTime()) / 1000;
    if (!isFinite(s) || new Date(t).getFullYear() < 2000) return 'never';
    return span(s) + ' ago';
  }
  // clock is a local time; with the date when it is not today.
  function clock(t) {
    const d = new Date(t);
    if (isNaN(d)) return '?';
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    return d.toDateString() === new Date().toDateString() ? time : d.toLocaleDateString() + ' ' + time;
  }
  // until says when something ends, relative first ("in 59 min"), with
  // the absolute local time after it.
  function until(t) {
    const s = (new Date(t).getTime() - Date.now()) / 1000;
    if (!isFinite(s)) return '?';
    return (s <= 0 ? 'ended' : 'in ' + span(s)) + ' (' + clock(t) + ')';
  }
  // timeCell is a table cell with a time: relative text, and the full
  // UTC time as a tooltip.
  function timeCell(t, text) {
    return el('td', { title: new Date(t).toISOString ? new Date(t).toISOString() : String(t), class: 'time' }, text);
  }

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
    $('conn').textContent = on ? 'live' : (token ? 'offline: retrying' : 'offline');
    $('conn').title = on ? 'receiving changes as they happen' : 'no connection to the member: what is shown may be out of date';
    $('conn').className = on ? 'on' : 'off';
    document.body.classList.toggle('stale', !on);
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
    const me = (members || []).find((m) => m.id === health.member);
    $('who').textContent = visible(me ? me.name : String(health.member).slice(0, 12)) + ' · ' +
      plural(health.decisions, 'decision') + ' in force · ledger position ' + health.applied.toLocaleString();
    if (!members || members.length === 0) {
      emptyRow($('members').tBodies[0], 6, 'no members known yet: the ledger has not been read');
      return;
    }
    replaceRows($('members').tBodies[0], (members || []).map((m) => {
      const self = m.id === health.member;
      const age = (Date.now() - new Date(m.last_heartbeat).getTime()) / 1000;
      let state = 'ok';
      if (m.expelled) state = 'expelled';
      else if (m.flagged) state = 'flagged';
      else if (self ? !health.connected : !(age < 35)) state = self ? 'disconnected' : 'down?';
      const lag = self ? 0 : Math.max(0, health.applied - (m.applied || 0));
      return el('tr', { 'data-member': m.id },
        el('td', { class: 'name' }, m.name + (self ? ' (this member)' : '')),
        el('td', { class: 'id', title: m.id }, String(m.id).slice(0, 8)),
        el('td', null, m.role + (m.council ? ', council' : '')),
        el('td', { class: state === 'ok' ? 'ok' : 'bad', title: state === 'down?' ? 'no heartbeat for more than 35 s: the member may be down or cut off' : '' },
          state + (m.flagged ? ': ' + m.flagged : '')),
        self ? el('td', null, '—') : timeCell(m.last_heartbeat, ago(m.last_heartbeat)),
        el('td', { title: 'ledger entries this member has not confirmed applying' }, self ? '0' : lag.toLocaleString()));
    }));
  }

  async function loadDecisions() {
    const list = (await api('GET', '/v1/decisions')) || [];
    const shown = Math.min(list.length, 500);
    $('decision-count').textContent = '(' + (shown < list.length ? 'latest ' + shown + ' of ' : '') + list.length.toLocaleString() + ')';
    list.sort((a, b) => new Date(b.last_seen) - new Date(a.last_seen));
    if (list.length === 0) {
      emptyRow($('decisions').tBodies[0], 8, 'no decisions in force: nothing is blocked right now');
    } else {
      replaceRows($('decisions').tBodies[0], list.slice(0, shown).map((d) => el('tr', { 'data-value': d.value },
        el('td', { class: 'addr' }, d.value),
        el('td', null, d.type),
        el('td', null, d.scenario),
        el('td', null, d.origin),
        el('td', { class: 'id' }, (d.reporters || []).length ? d.reporters.map((r) => String(r).slice(0, 8)).join(', ') : '—'),
        el('td', { class: 'num' }, d.events.toLocaleString()),
        timeCell(d.until, until(d.until)),
        el('td', { class: 'evidence' }, (d.evidence || []).length ?
          el('ul', null, ...d.evidence.map((line) => el('li', null, visible(line)))) : '—'))));
    }
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
      el('li', null, el('span', { class: 'addr' }, d.value), ' — ' + plural(d.events, 'event') + ' (' + visible(d.scenario, 80) + ')')));
    if (byEvents.length === 0) $('top-attackers').replaceChildren(el('li', { class: 'empty' }, 'none yet'));
    const sc = new Map();
    for (const d of list) {
      const s = sc.get(d.scenario) || { n: 0, events: 0 };
      s.n++; s.events += d.events;
      sc.set(d.scenario, s);
    }
    const top = [...sc.entries()].sort((a, b) => b[1].n - a[1].n).slice(0, 10);
    $('top-scenarios').replaceChildren(...top.map(([name, s]) =>
      el('li', null, visible(name, 80) + ' — ' + plural(s.n, 'decision') + ', ' + plural(s.events, 'event'))));
    if (top.length === 0) $('top-scenarios').replaceChildren(el('li', { class: 'empty' }, 'none yet'));
  }

  function addFeed(ev) {
    const ev0 = (ev.evidence || [])[0];
    const li = el('li', { class: ev.op },
      clock(Date.now()) + ' ' + ev.op + ' ' + ev.type + ' ',
      el('span', { class: 'addr' }, ev.value),
      ' · ' + visible(ev.scenario, 80) + ' · ' + ev.origin +
      (ev.reporters && ev.reporters.length ? ' · reported by ' + plural(ev.reporters.length, 'member') : '') +
      (ev0 ? ' · ' + visible(ev0, 120) : ''));
    const feed = $('feed');
    const idle = feed.querySelector('li.empty');
    if (idle) idle.remove();
    feed.prepend(li);
    while (feed.children.length > 200) feed.lastChild.remove();
  }

  function renderCeasefires(list) {
    if (!list || list.length === 0) {
      emptyRow($('ceasefires').tBodies[0], 6, 'no ceasefire: enforcement is on');
      return;
    }
    replaceRows($('ceasefires').tBodies[0], (list || []).map((c) => {
      const end = el('button', { type: 'button', class: 'cf-end', 'data-id': c.id }, 'End');
      end.addEventListener('click', () => endCeasefire(c.id));
      return el('tr', { 'data-id': c.id },
        el('td', { class: 'id' }, c.id), timeCell(c.until, until(c.until)), el('td', null, c.scenario || 'every'),
        el('td', { class: 'addr' }, c.scope || 'every'), el('td', null, c.reason), el('td', null, end));
    }));
  }

  // The time-to-protect chart: the slowest member's confirmation per
  // drill, oldest to newest, as an inline SVG built node by node.
  function renderDrills(drills) {
    const NS = 'http://www.w3.org/2000/svg';
    // The view box is about the size the card shows it at, so that its
    // text stays legible.
    const W = 400, H = 150, P = 30;
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('width', '100%');
    const pts = (drills || []).filter((d) => d.members.length > 0);
    const text = (x, y, s) => { const t = document.createElementNS(NS, 'text'); t.setAttribute('x', x); t.setAttribute('y', y); t.textContent = s; svg.append(t); };
    if (pts.length === 0) {
      $('ttp-chart').replaceChildren(el('p', { class: 'empty' },
        'No drills yet. A drill bans a harmless test address (198.18.0.0/15) through the alliance and measures how long each member takes to enforce it: press "Run a drill".'));
      return;
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
      text(2, H - P + 14, '0 ms');
      const last = pts[pts.length - 1];
      $('ttp-chart').replaceChildren(svg, el('p', { class: 'caption' },
        plural(pts.length, 'drill') + ', oldest to newest: the time until the slowest member enforced each. Latest: ' +
        last.max_ms.toFixed(1) + ' ms, ' + plural(last.members.length, 'member') + ' confirmed, ' + ago(last.at) + '.'));
    }
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
      $('drill-result').textContent = r.members.filter((m) => m.ok).length + ' of ' + plural(r.members.length, 'member') +
        ' protected; median ' + r.p50_ms + ' ms, slowest ' + r.p99_ms + ' ms';
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
