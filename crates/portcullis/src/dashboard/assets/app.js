// The dashboard's page: the state once, then every event as it happens
// (server-sent events), with a fresh state every ten seconds for the parts
// events do not carry (store, certificates).
'use strict';

const BLOCKS = new Set(['blocked', 'refused', 'banned', 'closed']);
const COLORS = ['#c0392b', '#2980b9', '#27ae60', '#8e44ad', '#d35400', '#16a085', '#7f8c8d'];
const $ = (id) => document.getElementById(id);
let minutes = [];
let clients = new Map();

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text == null ? '' : String(text);
  if (className) td.className = className;
}

function fillTable(id, rows) {
  const body = $(id);
  body.replaceChildren();
  for (const values of rows) {
    const row = body.insertRow();
    values.forEach((v) => cell(row, v));
  }
}

function showEvent(event, atTop) {
  const body = $('events');
  const row = body.insertRow(atTop ? 0 : -1);
  if (BLOCKS.has(event.action)) row.className = 'block';
  cell(row, (event.ts || '').replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
  cell(row, event.kind);
  cell(row, event.rule);
  cell(row, event.action);
  cell(row, event.client_ip);
  cell(row, event.detail, 'detail');
  while (body.rows.length > 100) body.deleteRow(-1);
}

function countBlock(event) {
  const minute = Math.floor(Date.now() / 60000) * 60;
  let last = minutes[minutes.length - 1];
  if (!last || last.at !== minute) {
    last = { at: minute, counts: {} };
    minutes.push(last);
    if (minutes.length > 60) minutes.shift();
  }
  const key = `${event.kind}:${event.rule}`;
  last.counts[key] = (last.counts[key] || 0) + 1;
}

function countClient(event) {
  if (!event.client_ip) return;
  clients.set(event.client_ip, (clients.get(event.client_ip) || 0) + 1);
}

function showClients() {
  const top = [...clients].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
  fillTable('clients', top);
}

function drawChart() {
  const svg = $('chart');
  const ns = 'http://www.w3.org/2000/svg';
  svg.replaceChildren();
  const detectors = [...new Set(minutes.flatMap((m) => Object.keys(m.counts)))].sort();
  const now = Math.floor(Date.now() / 60000) * 60;
  const highest = Math.max(1, ...minutes.map((m) => Object.values(m.counts).reduce((a, b) => a + b, 0)));
  const width = 600 / 60;
  for (const m of minutes) {
    const slot = 59 - Math.round((now - m.at) / 60);
    if (slot < 0) continue;
    let y = 120;
    detectors.forEach((d, i) => {
      const h = ((m.counts[d] || 0) / highest) * 110;
      if (h === 0) return;
      y -= h;
      const bar = document.createElementNS(ns, 'rect');
      bar.setAttribute('x', slot * width + 1);
      bar.setAttribute('y', y);
      bar.setAttribute('width', width - 2);
      bar.setAttribute('height', h);
      bar.setAttribute('fill', COLORS[i % COLORS.length]);
      const title = document.createElementNS(ns, 'title');
      title.textContent = `${d}: ${m.counts[d]}`;
      bar.appendChild(title);
      svg.appendChild(bar);
    });
  }
  const legend = $('legend');
  legend.replaceChildren();
  detectors.forEach((d, i) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = COLORS[i % COLORS.length];
    item.append(swatch, d);
    legend.appendChild(item);
  });
}

function showState(state, withEvents) {
  minutes = state.minutes;
  clients = new Map(state.top_clients.map((c) => [c.ip, c.blocks]));
  showClients();
  fillTable('bans', state.bans.slice().reverse().map((b) => [b.ip, new Date(b.at * 1000).toISOString()]));
  fillTable('certificates', state.certificates.map((c) => [c.name, c.expires]));
  $('store').textContent = state.store;
  if (withEvents) {
    $('events').replaceChildren();
    for (const event of state.recent.slice().reverse()) showEvent(event, false);
  }
  drawChart();
}

async function refresh(withEvents) {
  const response = await fetch('dashboard/state', { cache: 'no-store' });
  showState(await response.json(), withEvents);
}

function follow() {
  const feed = new EventSource('dashboard/events');
  feed.onopen = () => {
    $('status').textContent = 'live';
    $('status').className = 'live';
  };
  feed.onerror = () => {
    $('status').textContent = 'reconnecting…';
    $('status').className = '';
  };
  feed.onmessage = (message) => {
    const event = JSON.parse(message.data);
    showEvent(event, true);
    if (BLOCKS.has(event.action)) {
      countBlock(event);
      countClient(event);
      drawChart();
      showClients();
    }
  };
}

refresh(true).then(follow);
setInterval(() => refresh(false).catch(() => {}), 10000);
