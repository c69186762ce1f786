// gonat live view: upgrades the server-rendered page with the server's
// event stream. Every value from the server goes into the page through
// textContent, never as markup.
(function () {
  'use strict';

  var MAX_LOG = 300;

  var body = document.body;
  var statusEl = document.getElementById('status');
  var statusText = document.getElementById('status-text');
  var natsEl = document.getElementById('nats');
  var logBody = document.querySelector('#log tbody');
  var logEmpty = document.getElementById('log-empty');
  var missedEl = document.getElementById('missed');
  var pauseBtn = document.getElementById('pause');
  var topoEl = document.getElementById('topology');

  // What each event kind and verdict means, from the legend the server
  // rendered (it takes them from the engine): tooltips for live rows.
  function legend(attr) {
    var m = Object.create(null);
    Array.prototype.forEach.call(document.querySelectorAll('#legend [' + attr + ']'), function (d) {
      m[d.getAttribute(attr)] = d.querySelector('dd').textContent;
    });
    return m;
  }
  var kindMeaning = legend('data-kind');
  var verdictMeaning = legend('data-verdict');

  var paused = false;
  var held = [];
  var topoSig = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function pad(n, w) { n = String(n); while (n.length < w) n = '0' + n; return n; }

  // The same formats as the server's (server.go: expires, group);
  // expires takes a mapping's expires_in, in seconds.
  function expires(s) {
    if (!(s > 0)) return 'expiring';
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60, 2) + 's';
    return Math.floor(s / 3600) + 'h ' + pad(Math.floor(s % 3600 / 60), 2) + 'm';
  }
  function group(n) {
    var s = String(n || 0);
    for (var i = s.length - 3; i > 0; i -= 3) s = s.slice(0, i) + ',' + s.slice(i);
    return s;
  }
  function countText(n) { return n === 1 ? '1 mapping' : n + ' mappings'; }

  // The server's names of the mapping and filtering behaviours.
  var behaviours = JSON.parse(body.dataset.behaviours || '[]');
  function behaviour(s, filtering) {
    var w = String(s || '').toLowerCase();
    for (var i = 0; i < behaviours.length; i++) {
      var b = behaviours[i];
      if (b.words.indexOf(w) >= 0) return { long: b.long, short: filtering ? b.filtering : b.mapping };
    }
    return { long: s || '', short: s || '' };
  }
  function classic(m, f) {
    var mm = behaviour(m, false).short, ff = behaviour(f, true).short;
    if (mm === 'EIM') return { EIF: 'full cone', ADF: 'restricted cone', APDF: 'port-restricted cone' }[ff] || '';
    return (mm === 'ADM' || mm === 'APDM') ? 'symmetric' : '';
  }

  function clock(d) {
    return pad(d.getHours(), 2) + ':' + pad(d.getMinutes(), 2) + ':' + pad(d.getSeconds(), 2);
  }

  // --- NAT panels -------------------------------------------------------

  function findNAT(name) {
    var secs = natsEl.children;
    for (var i = 0; i < secs.length; i++) {
      if (secs[i].dataset.nat === name) return secs[i];
    }
    return null;
  }

  function th(text, cls) {
    var e = el('th', cls, text);
    e.scope = 'col';
    return e;
  }

  // buildNAT makes an empty panel with the structure page.html renders.
  function buildNAT(name) {
    var sec = el('section', 'panel nat');
    sec.dataset.nat = name;
    var h = el('h2');
    h.append('NAT ', el('span', 'nat-name', name), ' ', el('span', 'classic'));
    var side = el('div', 'nat-side');
    var dl = el('dl', 'behaviour');
    [['Mapping', 'mapping'], ['Filtering', 'filtering'], ['Ports', 'ports'], ['Hairpin', 'hairpin']].forEach(function (f) {
      var d = el('div');
      var dd = el('dd');
      dd.dataset.f = f[1];
      d.append(el('dt', null, f[0]), dd);
      dl.append(d);
    });
    var counters = el('table', 'counters');
    var cap = el('caption', null, 'Packets by verdict');
    var chead = el('thead');
    var chr = el('tr');
    chr.append(th('Verdict'), th('Packets', 'num'));
    chead.append(chr);
    counters.append(cap, chead, el('tbody'));
    side.append(dl, counters);
    var maps = el('table', 'mappings');
    var mcap = el('caption', null, 'Live mappings: ');
    mcap.append(el('span', 'mcount'));
    var mhead = el('thead');
    var mhr = el('tr');
    mhr.append(th('Proto'), th('Inside endpoint'), th('External endpoint'), th('Remotes admitted'),
      th('Expires in', 'num'), th('Packets out', 'num'), th('Packets in', 'num'));
    mhead.append(mhr);
    maps.append(mcap, mhead, el('tbody'));
    var scroll = el('div', 'table-scroll');
    scroll.append(maps);
    sec.append(h, side, scroll);
    return sec;
  }

  function setBehaviour(dd, b, what) {
    var abbr = dd.querySelector('abbr');
    var long = dd.querySelector('.long');
    if (!abbr || !long) {
      abbr = el('abbr');
      long = el('span', 'long');
      dd.replaceChildren(abbr, ' ', long);
    }
    abbr.textContent = b.short;
    abbr.title = b.long + ' ' + what;
    long.textContent = b.long;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function updateNAT(sec, n) {
    setText(sec.querySelector('.nat-name'), n.name);
    setText(sec.querySelector('.classic'), classic(n.mapping, n.filtering));
    var filt = behaviour(n.filtering, true);
    setBehaviour(sec.querySelector('dd[data-f="mapping"]'), behaviour(n.mapping, false), 'mapping');
    setBehaviour(sec.querySelector('dd[data-f="filtering"]'), filt, 'filtering');
    setText(sec.querySelector('dd[data-f="ports"]'), n.port_assignment || '');
    setText(sec.querySelector('dd[data-f="hairpin"]'), n.hairpin ? 'on' : 'off');

    // Counters: forward first, then the drops, most frequent first.
    var c = n.packets || {};
    var verdicts = Object.keys(c).sort(function (a, b) {
      if ((a === 'forward') !== (b === 'forward')) return a === 'forward' ? -1 : 1;
      if (c[a] !== c[b]) return c[b] - c[a];
      return a < b ? -1 : a > b ? 1 : 0;
    });
    var rows = verdicts.map(function (v) {
      var tr = el('tr', v === 'forward' ? '' : 'drop');
      var h = el('th', null, v);
      h.scope = 'row';
      if (verdictMeaning[v]) h.title = verdictMeaning[v];
      tr.append(h, el('td', 'num', group(c[v])));
      return tr;
    });
    if (rows.length === 0) {
      var none = el('tr', 'none');
      var td = el('td', null, 'no packets yet');
      td.colSpan = 2;
      none.append(td);
      rows.push(none);
    }
    sec.querySelector('table.counters tbody').replaceChildren.apply(sec.querySelector('table.counters tbody'), rows);

    // Mappings: keep the rows that stay (so nothing flickers), add and
    // highlight the new ones, drop the gone ones, in the server's order.
    var tbody = sec.querySelector('table.mappings tbody');
    var old = {};
    Array.prototype.forEach.call(tbody.querySelectorAll('tr[data-key]'), function (tr) { old[tr.dataset.key] = tr; });
    var maps = n.mappings || [];
    var anyRemote = filt.short === 'EIF';
    var out = maps.map(function (m) {
      var key = m.proto + ' ' + m.internal + ' ' + m.external;
      var tr = old[key];
      if (tr) {
        delete old[key];
      } else {
        tr = el('tr', 'fresh');
        tr.dataset.key = key;
        tr.append(el('td'), el('td', 'ep'), el('td', 'ep'), el('td', 'remotes'), el('td', 'num'), el('td', 'num'), el('td', 'num'));
      }
      var td = tr.children;
      setText(td[0], m.proto);
      setText(td[1], m.internal);
      setText(td[2], m.external);
      var remotes = anyRemote ? 'anyone' : (m.remotes && m.remotes.length ? m.remotes.join(', ') : '—');
      if (!anyRemote && m.remotes_total > (m.remotes || []).length) {
        remotes += ' and ' + (m.remotes_total - (m.remotes || []).length) + ' more';
      }
      setText(td[3], remotes);
      td[3].classList.toggle('any', anyRemote);
      setText(td[4], expires(m.expires_in));
      tr.classList.toggle('soon', m.expires_in > 0 && m.expires_in < 10);
      setText(td[5], group(m.packets_out));
      setText(td[6], group(m.packets_in));
      return tr;
    });
    if (out.length === 0) {
      var none2 = tbody.querySelector('tr.none');
      if (!none2) {
        none2 = el('tr', 'none');
        var td2 = el('td', null, 'No mappings. A mapping appears when a host inside sends a packet out.');
        td2.colSpan = 7;
        none2.append(td2);
      }
      out.push(none2);
    }
    // Reorder only what moved.
    for (var i = 0; i < out.length; i++) {
      if (tbody.children[i] !== out[i]) tbody.insertBefore(out[i], tbody.children[i] || null);
    }
    while (tbody.children.length > out.length) tbody.lastElementChild.remove();
    // The server sends the first page of a large table, and the total.
    var total = typeof n.mappings_total === 'number' ? n.mappings_total : maps.length;
    setText(sec.querySelector('.mcount'), countText(total) + (maps.length < total ? ' (the first ' + maps.length + ' shown)' : ''));
  }

  function applySnapshot(s) {
    setText(document.getElementById('lab-name'), s.name || '');
    var keep = [];
    (s.nats || []).forEach(function (n) {
      var sec = findNAT(n.name);
      if (!sec) sec = buildNAT(n.name);
      updateNAT(sec, n);
      keep.push(sec);
    });
    for (var i = 0; i < keep.length; i++) {
      if (natsEl.children[i] !== keep[i]) natsEl.insertBefore(keep[i], natsEl.children[i] || null);
    }
    while (natsEl.children.length > keep.length) natsEl.lastElementChild.remove();

    // The drawing: live mapping counts; redrawn when the nodes or the
    // NATs' behaviour change.
    var counts = {};
    (s.nats || []).forEach(function (n) {
      counts[n.name] = typeof n.mappings_total === 'number' ? n.mappings_total : (n.mappings || []).length;
    });
    Array.prototype.forEach.call(topoEl.querySelectorAll('[data-count-nat]'), function (t) {
      var n = counts[t.getAttribute('data-count-nat')];
      if (n !== undefined) setText(t, countText(n));
    });
    var sig = JSON.stringify([s.name, s.nodes, (s.nats || []).map(function (n) { return [n.name, n.mapping, n.filtering]; })]);
    if (topoSig !== null && sig !== topoSig) redrawTopology();
    topoSig = sig;

    statusEl.className = 'status live';
    setText(statusText, 'Live · updated ' + clock(new Date()));
  }

  function redrawTopology() {
    // ?inline: without the <style> a lone drawing carries, which the
    // page's policy refuses; the page's style sheet styles it.
    fetch('topology.svg?inline', { cache: 'no-store' }).then(function (r) { return r.text(); }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      var svg = doc.documentElement;
      if (!svg || svg.nodeName !== 'svg') return;
      if (svg.getAttribute('width') === '0') {
        topoEl.replaceChildren(el('p', 'empty', 'No nodes to draw.'));
      } else {
        topoEl.replaceChildren(document.importNode(svg, true));
      }
    }).catch(function () {});
  }

  // --- Event log -------------------------------------------------------

  function eventRow(ev) {
    var tr = el('tr', 'ev fresh');
    tr.dataset.kind = ev.kind || '';
    var d = new Date(ev.time);
    var t = el('time', null, isNaN(d) ? '' : clock(d) + '.' + pad(d.getMilliseconds(), 3));
    if (!isNaN(d)) t.dateTime = ev.time;
    var tdTime = el('td', 'time');
    tdTime.append(t);
    var tdKind = el('td', 'ev-kind');
    var kind = el('span', 'kind', ev.kind || '');
    if (kindMeaning[ev.kind]) kind.title = kindMeaning[ev.kind];
    tdKind.append(kind);
    if (ev.reason) {
      var reason = el('span', 'reason', ev.reason);
      if (verdictMeaning[ev.reason]) reason.title = verdictMeaning[ev.reason];
      tdKind.append(' ', reason);
    }
    tr.append(tdTime, el('td', 'ev-nat', ev.nat || ''), tdKind, el('td', 'text', ev.text || ''));
    return tr;
  }

  function addEvents(evs) {
    if (evs.length === 0) return;
    var frag = document.createDocumentFragment();
    for (var i = evs.length - 1; i >= 0; i--) frag.append(eventRow(evs[i]));
    logBody.insertBefore(frag, logBody.firstChild);
    while (logBody.children.length > MAX_LOG) logBody.lastElementChild.remove();
    logEmpty.hidden = true;
  }

  // Events arrive in bursts; add each burst in one go, at most once a
  // frame.
  var queue = [];
  var scheduled = false;
  function onEvent(ev) {
    if (paused) {
      held.push(ev);
      if (held.length > MAX_LOG) held.shift();
      pauseBtn.textContent = 'Resume (' + held.length + ' new)';
      return;
    }
    queue.push(ev);
    if (!scheduled) {
      scheduled = true;
      setTimeout(function () {
        scheduled = false;
        var q = queue;
        queue = [];
        addEvents(q);
      }, 0);
    }
  }

  pauseBtn.addEventListener('click', function () {
    paused = !paused;
    pauseBtn.setAttribute('aria-pressed', String(paused));
    if (paused) {
      pauseBtn.textContent = 'Resume';
    } else {
      pauseBtn.textContent = 'Pause';
      var h = held;
      held = [];
      addEvents(h);
    }
  });
  Array.prototype.forEach.call(document.querySelectorAll('#log-controls input[type="checkbox"]'), function (cb) {
    cb.addEventListener('change', function () {
      body.classList.toggle('hide-' + cb.value, !cb.checked);
    });
  });
  document.getElementById('log-controls').hidden = false;

  // --- The stream ------------------------------------------------------

  function parse(e) {
    try { return JSON.parse(e.data); } catch (err) { return null; }
  }

  var es = new EventSource('events?after=' + encodeURIComponent(body.dataset.lastId || ''));
  es.addEventListener('open', function () {
    statusEl.className = 'status live';
    setText(statusText, 'Live');
  });
  es.addEventListener('error', function () {
    statusEl.className = 'status down';
    setText(statusText, 'Connection lost · reconnecting…');
  });
  es.addEventListener('snapshot', function (e) {
    var s = parse(e);
    if (s) applySnapshot(s);
  });
  es.addEventListener('nat', function (e) {
    var ev = parse(e);
    if (ev) onEvent(ev);
  });
  es.addEventListener('dropped', function (e) {
    var d = parse(e);
    if (!d) return;
    missedEl.textContent = group(d.dropped) + (d.dropped === 1 ? ' event was' : ' events were') +
      ' not shown: this page could not keep up with the NATs.';
    missedEl.hidden = false;
  });
  window.addEventListener('pagehide', function () { es.close(); });
})();
