// edgeroute dashboard: the agent's state (GET v1/state), kept live by the
// agent's event feed (WebSocket v1/events). Plain browser JS, no build step.
//
// Everything shown comes from Marathon labels or the agent, so text is only
// ever set with textContent / attributes, never parsed as HTML.
(function () {
  'use strict';

  var REFRESH_EVENTS = { 'routing-changed': true, published: true, unpublished: true, 'policy-changed': true };
  var REFRESH_DEBOUNCE_MS = 100;
  // The feed reports routing changes only; problems, tasks that are not routed
  // yet (starting, waiting) and the Marathon/Redis links change without an
  // event, so the state is also read on this slow period while the tab is visible.
  var POLL_MS = 5000;
  var MAX_EVENTS = 20;
  var BACKOFF_MIN_MS = 500;
  var BACKOFF_MAX_MS = 10000;
  var STATES = ['published', 'warming', 'waiting', 'starting', 'unhealthy', 'draining'];

  // Relative URLs: the page works at / and behind a path prefix alike.
  // With --api-reads token, open the dashboard as http://agent/#token=TOKEN: the fragment never reaches a server log.
  var token = (/(?:^#|&)token=([^&]+)/.exec(location.hash) || [])[1] || null;
  var stateUrl = new URL('v1/state', location.href);
  var eventsUrl = new URL('v1/events', location.href);
  eventsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) eventsUrl.searchParams.set('token', decodeURIComponent(token));
  var stateHeaders = { accept: 'application/json' };
  if (token) stateHeaders.authorization = 'Bearer ' + decodeURIComponent(token);

  var $ = function (id) { return document.getElementById(id); };

  var lastState = null;
  var lastSyncAt = null;
  var events = [];
  var closedPolicies = Object.create(null); // app id -> policy <details> the user folded

  // ---- DOM helpers -------------------------------------------------------

  /** el('div', {class: 'x', title: 't'}, child, 'text', [more]) — text children become text nodes. */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var key in attrs) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) continue;
        if (key === 'class') node.className = value;
        else if (key === 'text') node.textContent = String(value);
        else if (key === 'style') node.setAttribute('style', value);
        else node.setAttribute(key, String(value));
      }
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(node, c); }); return; }
    node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }

  function setText(id, text, cls, title) {
    var node = $(id);
    node.textContent = text;
    if (cls !== undefined) node.className = cls;
    if (title !== undefined) {
      if (title) node.title = title; else node.removeAttribute('title');
    }
  }

  function str(v) { return v === null || v === undefined ? '' : String(v); }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }

  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return str(iso);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function ago(iso) {
    var t = new Date(iso).getTime();
    if (isNaN(t)) return '';
    var s = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  // ---- header ------------------------------------------------------------

  function renderStatus(state) {
    var m = state.marathon || {};
    setText('st-marathon', m.connected ? 'connected' : 'disconnected', m.connected ? 'ok' : 'bad', str(m.url));

    var r = state.redis || {};
    if (!r.configured) setText('st-redis', 'not configured', 'muted', '');
    else setText('st-redis', r.connected ? 'connected' : 'disconnected', r.connected ? 'ok' : 'bad', '');

    setText('st-version', state.version == null ? 'none yet' : str(state.version), 'mono' + (state.version == null ? ' muted' : ''));
    var plane = str((state.dataPlane && state.dataPlane.kind) || 'nginx');
    setText('st-dataplane', plane + ' holds', '', 'the data plane this routing node runs');
    var inSync = state.version != null && state.nginxVersion === state.version;
    var nginxText = state.nginxVersion == null ? 'nothing loaded' : str(state.nginxVersion);
    setText('st-nginx', nginxText, 'mono ' + (state.nginxVersion == null ? 'bad' : inSync ? 'ok' : 'warn'),
      state.nginxVersion == null ? plane + ' has no routing table from this agent yet' : inSync ? plane + ' holds the current table' : plane + ' holds another table version than the agent');

    lastSyncAt = state.lastSyncAt || null;
    renderSyncTime();
  }

  function renderSyncTime() {
    if (!lastSyncAt) { setText('st-sync', 'never', 'muted', ''); return; }
    setText('st-sync', clock(lastSyncAt) + ' (' + ago(lastSyncAt) + ')', '', str(lastSyncAt));
  }

  // ---- problems ----------------------------------------------------------

  function renderProblems(problems) {
    var list = $('problem-list');
    list.replaceChildren();
    (problems || []).forEach(function (p) {
      list.appendChild(el('li', null, el('span', { class: 'mono problem-app', text: str(p.app) }), ' ', el('span', { text: str(p.message) })));
    });
    $('problems').hidden = list.childElementCount === 0;
  }

  // ---- certificates (agent --certs) -----------------------------------------

  var DAY_MS = 86400000;
  // Expiring within this many days shows as a warning.
  var CERT_WARN_DAYS = 14;

  function expiresText(iso) {
    var t = new Date(iso).getTime();
    if (isNaN(t)) return '–';
    var days = Math.floor((t - Date.now()) / DAY_MS);
    var date = new Date(t).toISOString().slice(0, 10);
    if (t <= Date.now()) return date + ' (expired)';
    return date + ' (in ' + days + (days === 1 ? ' day)' : ' days)');
  }

  function renderCertificates(certs) {
    var list = $('cert-list');
    var rows = (certs || []).map(function (c) {
      var status = str(c.status);
      var t = new Date(c.notAfter).getTime();
      var soon = !isNaN(t) && t - Date.now() < CERT_WARN_DAYS * DAY_MS;
      var badge = status === 'served' ? 'published' : status === 'refused' ? 'unhealthy' : 'unknown';
      return el('tr', { 'data-cert-id': str(c.id), 'data-status': status },
        el('td', { class: 'mono' }, (c.names || []).map(function (n) { return el('span', { class: 'vhost mono', text: str(n) }); })),
        el('td', { class: 'mono task-id', text: str(c.file) }),
        el('td', { class: 'cert-expiry' + (soon ? ' warn' : ''), title: str(c.notAfter), text: c.notAfter == null ? '–' : expiresText(c.notAfter) }),
        el('td', null, el('span', { class: 'badge badge-' + badge, text: status || '?' }),
          c.problem ? el('div', { class: 'reason', text: str(c.problem) }) : null));
    });
    list.replaceChildren.apply(list, rows);
    $('cert-count').textContent = '(' + rows.length + ')';
    $('certificates').hidden = rows.length === 0;
  }

  // ---- apps --------------------------------------------------------------

  function matchesFilter(app, needle) {
    if (!needle) return true;
    var hay = [str(app.id)].concat(app.vhosts || []);
    (app.versions || []).forEach(function (v) {
      hay.push(str(v.name), str(v.marathonAppId));
      (v.backends || []).forEach(function (b) { hay.push(str(b.taskId), str(b.address)); });
    });
    return hay.some(function (h) { return String(h).toLowerCase().indexOf(needle) !== -1; });
  }

  function renderApps(apps) {
    var container = $('apps');
    var needle = $('filter').value.trim().toLowerCase();
    var shown = (apps || []).filter(function (a) { return matchesFilter(a, needle); });
    $('app-count').textContent = needle ? '(' + shown.length + ' of ' + (apps || []).length + ')' : '(' + (apps || []).length + ')';
    var nodes = shown.map(renderApp);
    if (nodes.length === 0) nodes = [el('p', { class: 'empty', text: needle ? 'No app matches the filter.' : 'No routed apps.' })];
    container.replaceChildren.apply(container, nodes);
  }

  function countStates(app) {
    var counts = {};
    var total = 0;
    (app.versions || []).forEach(function (v) {
      (v.backends || []).forEach(function (b) { counts[b.state] = (counts[b.state] || 0) + 1; total++; });
    });
    return { counts: counts, total: total };
  }

  // "host" for an app at "/" only, else "host/prefix" for each prefix.
  function placesOf(app) {
    var places = [];
    (app.vhosts || []).forEach(function (h) {
      var prefixes = (app.paths && app.paths[h]) || ['/'];
      prefixes.forEach(function (p) { places.push(p === '/' ? str(h) : str(h) + str(p)); });
    });
    return places;
  }

  var SETTING_TEXT = {
    stripPath: function () { return 'strip path'; },
    redirectHttps: function () { return 'redirect to https'; },
    sticky: function (v) { return 'sticky (cookie ' + str(v) + ')'; },
    balance: function (v) { return str(v); },
    connectTimeout: function (v) { return 'connect ' + str(v) + ' s'; },
    readTimeout: function (v) { return 'read ' + str(v) + ' s'; },
    sendTimeout: function (v) { return 'send ' + str(v) + ' s'; },
    maxBodySize: function (v) { return 'body ≤ ' + bytesText(v); },
    allowFrom: function (v) { return 'allow ' + (Array.isArray(v) ? v.join(', ') : str(v)); },
    // /v1/state gives the realm and the users, never the password hashes.
    basicAuth: function (v) { return 'basic auth ' + str(v && v.realm) + (v && Array.isArray(v.users) ? ' (' + v.users.join(', ') + ')' : ''); },
  };

  function bytesText(n) {
    if (typeof n !== 'number') return str(n);
    var units = ['B', 'KiB', 'MiB', 'GiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1 && n % 1024 === 0) { n /= 1024; i++; }
    return n + ' ' + units[i];
  }

  // The route's settings (edgeroute.* labels) as small tags; nothing for the defaults.
  function renderSettings(settings) {
    var names = Object.keys(settings || {});
    if (names.length === 0) return null;
    return el('span', { class: 'settings' }, names.map(function (name) {
      var text = SETTING_TEXT[name] ? SETTING_TEXT[name](settings[name]) : name + ' ' + str(settings[name]);
      return el('span', { class: 'setting mono', 'data-setting': name, text: text });
    }));
  }

  function renderApp(app) {
    var id = str(app.id);
    var summary = countStates(app);
    var chips = STATES.filter(function (s) { return summary.counts[s]; }).map(function (s) {
      return el('span', { class: 'badge badge-' + s, text: summary.counts[s] + ' ' + s });
    });
    Object.keys(summary.counts).forEach(function (s) {
      if (STATES.indexOf(s) === -1) chips.push(el('span', { class: 'badge badge-unknown', text: summary.counts[s] + ' ' + s }));
    });

    var head = el('div', { class: 'app-head' },
      el('h3', { class: 'app-id mono', text: id }),
      el('div', { class: 'vhosts' }, placesOf(app).map(function (h) { return el('span', { class: 'vhost mono', text: h }); })),
      el('div', { class: 'app-summary' }, summary.total === 0 ? el('span', { class: 'muted', text: 'no backends' }) : chips));

    var meta = el('div', { class: 'app-meta' },
      el('span', { class: 'label', text: 'default version' }), ' ',
      el('span', { class: 'mono', text: app.defaultVersion == null ? '–' : str(app.defaultVersion) }),
      renderSettings(app.settings));

    return el('section', { class: 'app', 'data-app-id': id },
      head,
      meta,
      renderPolicy(app),
      (app.versions || []).map(function (v) { return renderVersion(app, v); }));
  }

  function renderPolicy(app) {
    var id = str(app.id);
    var wrap = el('div', { class: 'policy' });
    if (app.policyError) {
      wrap.appendChild(el('div', { class: 'policy-error' }, el('strong', { text: 'policy error: ' }), el('span', { text: str(app.policyError) })));
    }
    if (app.policy === null || app.policy === undefined) {
      wrap.appendChild(el('div', { class: 'muted' }, el('span', { class: 'label', text: 'split policy' }), ' no policy'));
      return wrap;
    }
    var rules = app.policy && Array.isArray(app.policy.rules) ? app.policy.rules.length : null;
    var json;
    try { json = JSON.stringify(app.policy, null, 2); } catch (e) { json = str(app.policy); }
    var details = el('details', { class: 'policy-json', open: closedPolicies[id] ? null : 'open' },
      el('summary', null, el('span', { class: 'label', text: 'split policy' }), ' ',
        el('span', { class: 'muted', text: rules === null ? '' : rules + (rules === 1 ? ' rule' : ' rules') })),
      el('pre', { class: 'mono', text: json }));
    details.addEventListener('toggle', function () {
      if (details.open) delete closedPolicies[id]; else closedPolicies[id] = true;
    });
    wrap.appendChild(details);
    return wrap;
  }

  function renderVersion(app, v) {
    var isDefault = v.name === app.defaultVersion;
    var backends = v.backends || [];
    var rows = backends.map(renderBackend);
    var table = backends.length === 0
      ? el('p', { class: 'empty small', text: 'No tasks.' })
      : el('table', { class: 'backends' },
          el('thead', null, el('tr', null,
            el('th', { text: 'task' }), el('th', { text: 'address' }), el('th', { text: 'state' }),
            el('th', { text: 'weight' }), el('th', { text: 'reason' }))),
          el('tbody', null, rows));
    return el('div', { class: 'version', 'data-version': str(v.name) },
      el('div', { class: 'version-head' },
        el('span', { class: 'version-name mono', text: str(v.name) }),
        isDefault ? el('span', { class: 'tag', text: 'default' }) : null,
        el('span', { class: 'muted' }, 'Marathon app ', el('span', { class: 'mono', text: str(v.marathonAppId) }))),
      table);
  }

  function renderBackend(b) {
    var state = str(b.state);
    var known = STATES.indexOf(state) !== -1;
    var addr = b.address == null ? '–' : str(b.address) + (b.port == null ? '' : ':' + b.port);
    var weight = num(b.weight);
    var base = num(b.baseWeight);
    var pct = weight !== null && base ? Math.max(0, Math.min(100, (weight / base) * 100)) : 0;
    var badgeTitle = b.publishedAt ? 'published at ' + str(b.publishedAt) : null;
    return el('tr', { 'data-task-id': str(b.taskId), 'data-state': state },
      el('td', { class: 'mono task-id', text: str(b.taskId) }),
      el('td', { class: 'mono', text: addr }),
      el('td', null, el('span', { class: 'badge state badge-' + (known ? state : 'unknown'), title: badgeTitle, text: state || '?' })),
      el('td', null, el('div', { class: 'weight' },
        el('div', { class: 'bar', title: pct.toFixed(0) + '% of the base weight' },
          el('div', { class: 'bar-fill bar-' + (known ? state : 'unknown'), style: 'width:' + pct.toFixed(1) + '%' })),
        el('span', { class: 'mono weight-num', text: (weight === null ? '?' : weight) + ' / ' + (base === null ? '?' : base) }))),
      el('td', { class: 'reason', text: str(b.reason) }));
  }

  // ---- state fetching ----------------------------------------------------

  var fetchSeq = 0;
  var inFlight = false;
  var again = false;
  var refreshTimer = null;

  function scheduleRefresh() {
    if (refreshTimer !== null) clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, REFRESH_DEBOUNCE_MS);
  }

  function refresh() {
    if (inFlight) { again = true; return; } // one fetch at a time; the last request wins
    inFlight = true;
    var seq = ++fetchSeq;
    fetch(stateUrl, { cache: 'no-store', headers: stateHeaders })
      .then(function (res) {
        if (!res.ok) throw new Error('GET ' + stateUrl.pathname + ': HTTP ' + res.status);
        return res.json();
      })
      .then(function (state) {
        if (seq !== fetchSeq) return;
        lastState = state;
        showFetchError(null);
        render();
      })
      .catch(function (err) {
        showFetchError('Cannot read the agent state: ' + (err && err.message ? err.message : String(err)));
      })
      .then(function () {
        inFlight = false;
        if (again) { again = false; refresh(); }
      });
  }

  function showFetchError(message) {
    var banner = $('fetch-error');
    banner.textContent = message || '';
    banner.hidden = !message;
  }

  function render() {
    if (!lastState) return;
    renderStatus(lastState);
    renderProblems(lastState.problems);
    renderCertificates(lastState.certificates);
    renderApps(lastState.apps);
    document.body.setAttribute('data-version', str(lastState.version));
  }

  // ---- live feed ---------------------------------------------------------

  var socket = null;
  var backoffMs = BACKOFF_MIN_MS;
  var reconnectAt = null;
  var reconnectTimer = null;

  function setLive(mode, text) {
    var live = $('live');
    live.className = 'live live-' + mode;
    live.setAttribute('data-live', mode);
    $('live-text').textContent = text;
  }

  function connect() {
    reconnectTimer = null;
    reconnectAt = null;
    setLive('connecting', 'connecting…');
    var ws;
    try {
      ws = new WebSocket(eventsUrl.href);
    } catch (err) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      backoffMs = BACKOFF_MIN_MS;
      setLive('open', 'live');
      // Events may have been missed while disconnected.
      scheduleRefresh();
    };
    ws.onmessage = function (msg) {
      var event;
      try { event = JSON.parse(msg.data); } catch (e) { return; }
      if (!event || typeof event !== 'object') return;
      addEvent(event);
      if (REFRESH_EVENTS[event.type]) scheduleRefresh();
      else if (event.type === 'hello' && lastState && event.version !== lastState.version) scheduleRefresh();
    };
    ws.onclose = function () {
      if (socket !== ws) return;
      socket = null;
      scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    var delay = Math.round(backoffMs * (0.75 + Math.random() * 0.5));
    backoffMs = Math.min(BACKOFF_MAX_MS, backoffMs * 2);
    reconnectAt = Date.now() + delay;
    updateReconnectText();
    reconnectTimer = setTimeout(connect, delay);
  }

  function updateReconnectText() {
    if (reconnectAt === null) return;
    var s = Math.max(0, Math.ceil((reconnectAt - Date.now()) / 1000));
    setLive('reconnecting', 'disconnected, reconnecting' + (s > 0 ? ' in ' + s + ' s' : '…'));
  }

  // ---- recent events -----------------------------------------------------

  function describe(e) {
    var where = [e.app, e.version].filter(function (x) { return x !== undefined && x !== null && x !== ''; }).map(str).join(' / ');
    switch (e.type) {
      case 'hello': return 'connected; table version ' + (e.version == null ? 'none' : str(e.version));
      case 'routing-changed': {
        var parts = ['table ' + str(e.version)];
        if (Array.isArray(e.changed) && e.changed.length) parts.push('changed ' + e.changed.map(str).join(', '));
        if (Array.isArray(e.removed) && e.removed.length) parts.push('removed ' + e.removed.map(str).join(', '));
        return parts.join('; ');
      }
      case 'published': return where + ': ' + str(e.taskId);
      case 'unpublished': return where + ': ' + str(e.taskId) + (e.reason ? ' (' + str(e.reason) + ')' : '');
      case 'policy-changed': return str(e.app);
      case 'error': return str(e.message);
      default: {
        var copy = {};
        for (var k in e) if (k !== 'type' && k !== 'at') copy[k] = e[k];
        var text = JSON.stringify(copy);
        return text === '{}' ? '' : text;
      }
    }
  }

  function addEvent(e) {
    events.unshift({ type: str(e.type) || '?', at: e.at || new Date().toISOString(), text: describe(e) });
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
    renderEvents();
  }

  function renderEvents() {
    var list = $('events');
    var items = events.map(function (e) {
      var cls = 'event event-' + e.type.replace(/[^a-z0-9-]/gi, '');
      return el('li', { class: cls, title: str(e.at) },
        el('span', { class: 'event-time mono', text: clock(e.at) }),
        el('span', { class: 'event-type', text: e.type }),
        el('span', { class: 'event-text', text: e.text }));
    });
    if (items.length === 0) items = [el('li', { class: 'empty', text: 'No events yet.' })];
    list.replaceChildren.apply(list, items);
  }

  // ---- start -------------------------------------------------------------

  $('filter').addEventListener('input', function () { render(); });
  setInterval(function () { renderSyncTime(); updateReconnectText(); }, 1000);
  setInterval(function () {
    if (document.visibilityState === 'visible' && refreshTimer === null) refresh();
  }, POLL_MS);
  // A tab woken from sleep may hold a dead socket or stale state.
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState !== 'visible') return;
    scheduleRefresh();
    if (socket === null && reconnectTimer !== null) { clearTimeout(reconnectTimer); backoffMs = BACKOFF_MIN_MS; connect(); }
  });
  refresh();
  connect();
})();
