// edgeroute dashboard: the agent's state (GET v1/state, a page of apps at a
// time), kept live by the agent's event feed (WebSocket v1/events); each
// app's traffic per version (GET v1/traffic, plotted with uPlot), the fleet
// of routing nodes (GET v1/nodes) and rollouts under way (GET v1/rollouts).
// Plain browser JS, no build step.
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
  // Apps per page: the agent filters and pages, so 10,000 apps cost what 50 do.
  var PAGE_SIZE = 50;
  var FILTER_DEBOUNCE_MS = 250;
  // Traffic is read as often as the agent samples it (its intervalSeconds), at least this often.
  var TRAFFIC_POLL_MIN_MS = 1000;
  var FLEET_POLL_MS = 3000;

  // Relative URLs: the page works at / and behind a path prefix alike.
  // With --api-reads token, open the dashboard as http://agent/#token=TOKEN: the fragment never reaches a server log.
  var token = (/(?:^#|&)token=([^&]+)/.exec(location.hash) || [])[1] || null;
  var stateUrl = new URL('v1/state', location.href);
  var trafficUrl = new URL('v1/traffic', location.href);
  var nodesUrl = new URL('v1/nodes', location.href);
  var rolloutsUrl = new URL('v1/rollouts', location.href);
  var eventsUrl = new URL('v1/events', location.href);
  eventsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  if (token) eventsUrl.searchParams.set('token', decodeURIComponent(token));
  var stateHeaders = { accept: 'application/json' };
  if (token) stateHeaders.authorization = 'Bearer ' + decodeURIComponent(token);

  var $ = function (id) { return document.getElementById(id); };

  var lastState = null;
  var pageOffset = 0;
  // The search the apps are filtered by: the box's text once typing pauses.
  // Polls and page buttons use it, not the text being typed, so a poll never
  // applies a search early and the pause then never moves a page already turned.
  var appliedNeedle = '';
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

  // ---- ACME names (agent --acme-directory, label edgeroute.acme) ------------

  function renderAcme(names) {
    var list = $('acme-list');
    var rows = (names || []).map(function (n) {
      var status = str(n.status);
      var badge = status === 'valid' || status === 'manual' ? 'published' : status === 'failing' ? 'unhealthy' : 'unknown';
      var detail = status === 'failing'
        ? str(n.failures) + ' failure' + (n.failures === 1 ? '' : 's') + ' (last on ' + str(n.failedOn) + '): ' + str(n.error) + '; next attempt ' + str(n.retryAt)
        : status === 'manual' ? 'a --certs certificate serves it' : n.ordering ? 'ordering now' : '';
      return el('tr', { 'data-acme-name': str(n.name), 'data-status': status },
        el('td', { class: 'mono' }, el('span', { class: 'vhost mono', text: str(n.name) })),
        el('td', { class: 'cert-expiry', title: str(n.notAfter), text: n.notAfter == null ? '–' : expiresText(n.notAfter) }),
        el('td', { class: 'mono', text: n.renewAt == null ? '–' : str(n.renewAt) }),
        el('td', null, el('span', { class: 'badge badge-' + badge, text: status || '?' }),
          detail ? el('div', { class: 'reason', text: detail }) : null));
    });
    list.replaceChildren.apply(list, rows);
    $('acme-count').textContent = '(' + rows.length + ')';
    $('acme').hidden = rows.length === 0;
  }

  // ---- apps --------------------------------------------------------------

  // The agent filters (?q=) and pages (?offset=&limit=): the page holds the apps shown.
  function renderApps(apps) {
    var container = $('apps');
    var needle = appliedNeedle;
    var total = num(lastState.appCount);
    var matched = num(lastState.matched);
    var offset = num(lastState.offset) || 0;
    var shown = apps || [];
    $('app-count').textContent = total === null ? '(' + shown.length + ')' : needle ? '(' + matched + ' of ' + total + ')' : '(' + total + ')';
    var nodes = shown.map(renderApp);
    if (nodes.length === 0) nodes = [el('p', { class: 'empty', text: needle ? 'No app matches the filter.' : 'No routed apps.' })];
    container.replaceChildren.apply(container, nodes);
    var count = matched === null ? shown.length : matched;
    $('pager').hidden = count <= PAGE_SIZE && offset === 0;
    $('page-text').textContent = shown.length === 0 ? '' : 'apps ' + (offset + 1) + '–' + (offset + shown.length) + ' of ' + count;
    $('page-prev').disabled = offset === 0;
    $('page-next').disabled = offset + shown.length >= count;
    forgetTraffic(shown);
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

    var traffic = trafficBlock(id);
    return el('section', { class: 'app', 'data-app-id': id, 'data-flagged': traffic.el.getAttribute('data-flagged') },
      head,
      meta,
      renderPolicy(app),
      traffic.el,
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

  var inFlight = false;
  var again = false;
  var refreshTimer = null;

  function scheduleRefresh() {
    if (refreshTimer !== null) clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, REFRESH_DEBOUNCE_MS);
  }

  // The page and search a reply must answer to be shown: the ones asked for
  // last. A reply to an earlier query (a search typed on, another page
  // clicked while it was on its way) is dropped, never shown, even for a
  // moment; the fetch that follows the change asks for the current one.
  function currentQuery() { return pageOffset + '\n' + appliedNeedle; }

  function refresh() {
    if (inFlight) { again = true; return; } // one fetch at a time; the last request wins
    inFlight = true;
    var query = currentQuery();
    var url = new URL(stateUrl.href);
    url.searchParams.set('offset', String(pageOffset));
    url.searchParams.set('limit', String(PAGE_SIZE));
    if (appliedNeedle) url.searchParams.set('q', appliedNeedle);
    fetch(url, { cache: 'no-store', headers: stateHeaders })
      .then(function (res) {
        if (!res.ok) throw new Error('GET ' + url.pathname + ': HTTP ' + res.status);
        return res.json();
      })
      .then(function (state) {
        if (query !== currentQuery()) return;
        var firstState = !lastState;
        var paged = firstState || pageIds(lastState) !== pageIds(state);
        lastState = state;
        showFetchError(null);
        render();
        // Another page of apps: their traffic at once, not at the next poll; the fleet with the first state.
        if (paged) refreshTraffic();
        if (firstState) { refreshFleet(); refreshRollouts(); }
      })
      .catch(function (err) {
        if (query !== currentQuery()) return;
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
    renderAcme(lastState.acme);
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

  // ---- traffic per version (GET v1/traffic, plotted with uPlot) -----------

  // The default version first, in blue; the others in colours that stand apart from it.
  var VERSION_COLOURS = ['#1a66d2', '#e8710a', '#12b5cb', '#9334e6', '#188038', '#d01884', '#5f6368'];
  var PLOTS = [
    { metric: 'rps', title: 'requests/s', fmt: function (v) { return v == null ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1); } },
    { metric: 'share', title: 'share of the app', fmt: function (v) { return v == null ? '–' : v.toFixed(0) + ' %'; }, range: [0, 100] },
    // Ratios are plotted in percent, so the axis gets round steps.
    { metric: 'errors', title: '5xx', fmt: function (v) { return v == null ? '–' : v.toFixed(v < 10 ? 1 : 0) + ' %'; }, min: 1 },
    { metric: 'latency', title: 'latency', fmt: function (v) { return v == null ? '–' : msText(v); } },
  ];

  var trafficBlocks = Object.create(null); // app id -> { el, table, plots, key, updates }
  var trafficMeta = null; // the last answer's latency kind, window and interval
  var trafficTimer = null;
  var trafficInFlight = false;
  var trafficAgain = false;

  function msText(ms) {
    if (ms == null) return '–';
    return ms >= 1000 ? (ms / 1000).toFixed(2) + ' s' : ms >= 10 ? ms.toFixed(0) + ' ms' : ms.toFixed(1) + ' ms';
  }
  function percentText(ratio) { return ratio == null ? '–' : (ratio * 100).toFixed(1) + ' %'; }

  function pageIds(state) { return (state.apps || []).map(function (a) { return str(a.id); }).join('\n'); }

  function trafficBlock(id) {
    var block = trafficBlocks[id];
    if (block) return block;
    var table = el('table', { class: 'traffic-table' });
    var plots = el('div', { class: 'plots' });
    var note = el('p', { class: 'empty small traffic-note', text: 'Traffic: waiting for the first reading…' });
    block = { el: el('div', { class: 'traffic', 'data-app': id, 'data-updates': '0' }, note, table, plots), note: note, table: table, plotsEl: plots, plots: [], key: null, updates: 0 };
    trafficBlocks[id] = block;
    return block;
  }

  // Apps that left the page lose their plots.
  function forgetTraffic(shown) {
    var keep = Object.create(null);
    shown.forEach(function (a) { keep[str(a.id)] = true; });
    Object.keys(trafficBlocks).forEach(function (id) {
      if (keep[id]) return;
      destroyPlots(trafficBlocks[id]);
      delete trafficBlocks[id];
    });
  }

  function destroyPlots(block) {
    block.plots.forEach(function (p) { p.plot.destroy(); });
    block.plots = [];
    block.key = null;
    block.plotsEl.replaceChildren();
  }

  function scheduleTraffic(delay) {
    if (trafficTimer !== null) clearTimeout(trafficTimer);
    trafficTimer = setTimeout(function () {
      trafficTimer = null;
      if (document.visibilityState === 'visible') refreshTraffic();
      var every = trafficMeta && trafficMeta.intervalSeconds ? trafficMeta.intervalSeconds * 1000 : 5000;
      scheduleTraffic(Math.max(TRAFFIC_POLL_MIN_MS, every));
    }, delay);
  }

  function refreshTraffic() {
    // A page shown while the last page's traffic was on its way gets its own right after.
    if (trafficInFlight) { trafficAgain = true; return; }
    if (!lastState) return;
    var ids = (lastState.apps || []).map(function (a) { return str(a.id); });
    if (ids.length === 0) return;
    trafficInFlight = true;
    var url = new URL(trafficUrl.href);
    url.searchParams.set('app', ids.join(','));
    url.searchParams.set('history', 'true');
    fetch(url, { cache: 'no-store', headers: stateHeaders })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (!body) return;
        trafficMeta = body;
        (body.apps || []).forEach(function (t) {
          var block = trafficBlocks[str(t.app)];
          if (block) renderTraffic(block, t, body);
        });
      })
      .catch(function () { /* the state's banner tells when the agent is away */ })
      .then(function () {
        trafficInFlight = false;
        if (trafficAgain) { trafficAgain = false; refreshTraffic(); }
      });
  }

  function renderTraffic(block, t, meta) {
    var mean = meta.latency === 'mean';
    var versions = t.versions || [];
    var history = t.history || { times: [], versions: [] };
    var colourOf = colours(t, history);
    var flagged = versions.some(function (v) { return (v.flags || []).length > 0; });
    var section = block.el.closest('section.app');
    if (section) section.setAttribute('data-flagged', flagged ? 'true' : 'false');
    block.el.setAttribute('data-flagged', flagged ? 'true' : 'false');

    var served = history.versions.some(function (v) { return v.requestsPerSecond.some(function (x) { return x; }); });
    if (versions.length === 0 && !served) {
      block.note.textContent = 'No requests in the last ' + Math.round((meta.windowSeconds || 1800) / 60) + ' minutes.';
      block.note.hidden = false;
      block.table.replaceChildren();
      destroyPlots(block);
      return;
    }
    block.note.hidden = versions.length > 0;
    block.note.textContent = 'No requests in the live window.';

    var head = el('tr', null, el('th', { text: 'version' }), el('th', { text: 'req/s' }), el('th', { text: 'share' }), el('th', { text: '5xx' }),
      mean ? el('th', { text: 'mean', title: "HAProxy's average response time: this node's haproxy.cfg predates the latency histogram (run edgeroute haproxy-conf again for p50/p99)" }) : [el('th', { text: 'p50' }), el('th', { text: 'p99' })],
      el('th', { text: '' }));
    var rows = versions.map(function (v) {
      var flags = v.flags || [];
      return el('tr', { class: 'traffic-row' + (flags.length ? ' flagged' : ''), 'data-version': str(v.version), 'data-share': v.share == null ? '' : String(v.share), 'data-flagged': flags.length ? 'true' : 'false' },
        el('td', null, el('span', { class: 'swatch', style: 'background:' + colourOf(v.version) }), el('span', { class: 'mono', text: str(v.version) }),
          v.version === t.defaultVersion ? el('span', { class: 'tag', text: 'default' }) : null),
        el('td', { class: 'num t-rps', text: num(v.requestsPerSecond) === null ? '–' : v.requestsPerSecond.toFixed(1) }),
        el('td', { class: 'num t-share', text: percentText(v.share) }),
        el('td', { class: 'num t-errors' + (flags.length && v.errorRatio ? ' bad' : ''), text: percentText(v.errorRatio) }),
        mean ? el('td', { class: 'num t-mean', text: msText(v.meanMs) }) : [el('td', { class: 'num t-p50', text: msText(v.p50Ms) }), el('td', { class: 'num t-p99', text: msText(v.p99Ms) })],
        el('td', { class: 't-flags' }, flags.map(function (f) { return el('span', { class: 'badge badge-unhealthy', text: 'worse: ' + f }); })));
    });
    block.table.replaceChildren(el('thead', null, head), el('tbody', null, rows));
    renderPlots(block, history, colourOf, mean, t.defaultVersion);
  }

  function colours(t, history) {
    var names = [];
    if (t.defaultVersion != null) names.push(str(t.defaultVersion));
    (t.versions || []).concat(history.versions || []).forEach(function (v) { if (names.indexOf(str(v.version)) === -1) names.push(str(v.version)); });
    return function (name) { return VERSION_COLOURS[Math.max(0, names.indexOf(str(name))) % VERSION_COLOURS.length]; };
  }

  function plotData(history, metric) {
    var data = [history.times];
    history.versions.forEach(function (v) {
      if (metric === 'rps') data.push(v.requestsPerSecond);
      else if (metric === 'share') data.push(percents(v.share));
      else if (metric === 'errors') data.push(percents(v.errorRatio));
      else { data.push(v.p50Ms); data.push(v.p99Ms); }
    });
    return data;
  }

  function percents(ratios) { return ratios.map(function (r) { return r == null ? null : Math.round(r * 10000) / 100; }); }

  function plotSeries(history, metric, colourOf, mean) {
    var series = [{}];
    history.versions.forEach(function (v) {
      var colour = colourOf(v.version);
      var line = { label: str(v.version), stroke: colour, width: 1.5, points: { show: false } };
      if (metric !== 'latency') { series.push(line); return; }
      series.push({ label: str(v.version) + (mean ? ' mean' : ' p50'), stroke: colour, width: 1.2, dash: mean ? undefined : [4, 3], points: { show: false } });
      series.push({ label: str(v.version) + ' p99', stroke: colour, width: 1.5, points: { show: false }, show: !mean });
    });
    return series;
  }

  function plotWidth(block) {
    var width = block.el.clientWidth || 800;
    return Math.max(180, Math.floor((width - 3 * 12) / 4));
  }

  function renderPlots(block, history, colourOf, mean, defaultVersion) {
    if (typeof window.uPlot !== 'function') {
      block.note.hidden = false;
      block.note.textContent = 'The plotting library did not load.';
      return;
    }
    // New plots when the versions change; otherwise new data in the same plots.
    var key = JSON.stringify([history.versions.map(function (v) { return v.version; }), mean, defaultVersion]);
    if (block.key !== key) {
      destroyPlots(block);
      block.key = key;
      PLOTS.forEach(function (def) {
        var area = el('div', { class: 'plot-area' });
        var figure = el('figure', { class: 'plot', 'data-metric': def.metric }, el('figcaption', { text: def.metric === 'latency' ? (mean ? 'latency (mean)' : 'latency p50 - - / p99 —') : def.title }), area);
        block.plotsEl.appendChild(figure);
        var opts = {
          width: plotWidth(block),
          height: 120,
          legend: { show: false },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: def.range ? def.range : function (u, min, max) { return [0, Math.max(def.min || 0.001, (max || 0) * 1.1)]; } } },
          axes: [
            { stroke: '#6b7385', size: 24, grid: { show: false }, font: '10px system-ui' },
            { stroke: '#6b7385', size: 52, font: '10px system-ui', values: function (u, vals) { return vals.map(def.fmt); } },
          ],
          series: plotSeries(history, def.metric, colourOf, mean),
        };
        block.plots.push({ def: def, plot: new window.uPlot(opts, plotData(history, def.metric), area) });
      });
    } else {
      block.plots.forEach(function (p) { p.plot.setData(plotData(history, p.def.metric)); });
    }
    block.updates++;
    block.el.setAttribute('data-updates', String(block.updates));
    var points = history.versions.reduce(function (n, v) { return n + v.requestsPerSecond.filter(function (x) { return x != null; }).length; }, 0);
    block.el.setAttribute('data-points', String(points));
  }

  function resizePlots() {
    Object.keys(trafficBlocks).forEach(function (id) {
      var block = trafficBlocks[id];
      var width = plotWidth(block);
      block.plots.forEach(function (p) { p.plot.setSize({ width: width, height: 120 }); });
    });
  }

  // ---- routing nodes (GET v1/nodes) ----------------------------------------

  function agoMs(ms) {
    if (ms == null) return '–';
    var s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.floor(s / 60) + ' min ago' : Math.floor(s / 3600) + ' h ago';
  }

  function sameText(match) { return match === null || match === undefined ? '' : match ? 'same' : 'differs'; }

  // The fleet and the rollouts live in Redis: an agent without it has neither to show.
  function redisConfigured() { return !!(lastState && lastState.redis && lastState.redis.configured); }

  function refreshFleet() {
    if (!redisConfigured()) { $('fleet').hidden = true; return; }
    fetch(nodesUrl, { cache: 'no-store', headers: stateHeaders })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) { renderFleet(body); })
      .catch(function () { /* the state's banner tells */ });
  }

  function renderFleet(body) {
    // Without Redis (503) there is no fleet to show.
    if (!body || !Array.isArray(body.nodes)) { $('fleet').hidden = true; return; }
    var now = Date.now();
    var rows = body.nodes.map(function (n) {
      var bad = !!n.outOfStep;
      return el('tr', { class: 'node-row' + (bad ? ' out-of-step' : ''), 'data-node-id': str(n.nodeId), 'data-out-of-step': bad ? 'true' : 'false', 'data-live': n.live ? 'true' : 'false' },
        el('td', null, el('span', { class: 'mono', text: str(n.nodeId) }), n.self ? el('span', { class: 'tag', text: 'this node' }) : null),
        el('td', { text: str(n.dataPlane || 'nginx') }),
        el('td', null, el('span', { class: 'mono', text: n.tableVersion == null ? 'none' : str(n.tableVersion) }), ' ',
          el('span', { class: n.tableMatches === false ? 'bad' : 'muted', text: sameText(n.tableMatches) })),
        el('td', null, n.policies ? [el('span', { text: n.policies.count + (n.policies.count === 1 ? ' policy' : ' policies') }), ' ',
          el('span', { class: n.policiesMatch === false ? 'bad' : 'muted', text: sameText(n.policiesMatch) })] : el('span', { class: 'muted', text: '–' })),
        el('td', { text: n.lastPushAt ? agoMs(now - n.lastPushAt) : '–' }),
        el('td', { class: n.drainsAwaiting > 0 ? 'warn' : '', text: String(n.drainsAwaiting || 0) }),
        el('td', { text: agoMs(n.heartbeatAgeMs) }),
        el('td', null, bad
          ? el('span', { class: 'badge badge-unhealthy', title: (n.problems || []).join('; '), text: 'out of step' })
          : el('span', { class: 'badge badge-published', text: 'in step' }),
          bad ? el('div', { class: 'reason', text: (n.problems || []).join('; ') }) : null));
    });
    var list = $('fleet-list');
    list.replaceChildren.apply(list, rows);
    var out = body.nodes.filter(function (n) { return n.outOfStep; }).length;
    $('fleet-count').textContent = '(' + body.nodes.length + (out ? ', ' + out + ' out of step' : '') + ')';
    $('fleet').hidden = false;
  }

  // ---- rollouts (GET v1/rollouts) ------------------------------------------

  function refreshRollouts() {
    if (!redisConfigured()) { $('rollouts').hidden = true; return; }
    fetch(rolloutsUrl, { cache: 'no-store', headers: stateHeaders })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) { renderRollouts(body && body.rollouts); })
      .catch(function () { /* the state's banner tells */ });
  }

  function renderRollouts(rollouts) {
    var list = $('rollout-list');
    var cards = (rollouts || []).map(function (r) {
      var steps = (Array.isArray(r.steps) ? r.steps : []).concat([100]);
      var chips = steps.map(function (p) {
        var cls = 'step' + (p === r.percent ? ' step-current' : p < r.percent ? ' step-done' : '');
        return el('span', { class: cls, 'data-percent': String(p), text: p + ' %' });
      });
      var to = r.to || {};
      var from = r.from || {};
      return el('div', { class: 'rollout', 'data-app': str(r.app), 'data-phase': str(r.phase) },
        el('div', { class: 'rollout-head' },
          el('span', { class: 'mono app-id', text: str(r.app) }),
          el('span', { class: 'mono', text: str(from.version) + ' → ' + str(to.version) }),
          el('span', { class: 'badge badge-' + (r.phase === 'done' ? 'published' : r.phase === 'aborted' || r.phase === 'aborting' ? 'draining' : 'warming'), text: str(r.phase) })),
        el('div', { class: 'steps' }, chips),
        el('div', { class: 'rollout-shares' },
          el('span', { class: 'label', text: 'share set' }), ' ', el('span', { class: 'mono r-set', text: num(r.percent) === null ? '–' : r.percent + ' %' }), '   ',
          el('span', { class: 'label', text: 'measured here' }), ' ', el('span', { class: 'mono r-measured', text: num(r.measuredPercent) === null ? '–' : r.measuredPercent.toFixed(1) + ' %' }),
          el('span', { class: 'muted small', text: '  started ' + clock(r.startedAt) + (r.by ? ' by ' + str(r.by) : '') })));
    });
    list.replaceChildren.apply(list, cards);
    $('rollout-count').textContent = '(' + cards.length + ')';
    $('rollouts').hidden = cards.length === 0;
  }

  // ---- start -------------------------------------------------------------

  var filterTimer = null;
  $('filter').addEventListener('input', function () {
    if (filterTimer !== null) clearTimeout(filterTimer);
    filterTimer = setTimeout(function () {
      filterTimer = null;
      var needle = $('filter').value.trim();
      if (needle === appliedNeedle) return;
      appliedNeedle = needle;
      pageOffset = 0;
      refresh();
    }, FILTER_DEBOUNCE_MS);
  });
  $('page-prev').addEventListener('click', function () { pageOffset = Math.max(0, pageOffset - PAGE_SIZE); refresh(); });
  $('page-next').addEventListener('click', function () { pageOffset += PAGE_SIZE; refresh(); });
  window.addEventListener('resize', function () { resizePlots(); });
  scheduleTraffic(0);
  setInterval(function () {
    if (document.visibilityState === 'visible') { refreshFleet(); refreshRollouts(); }
  }, FLEET_POLL_MS);
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
