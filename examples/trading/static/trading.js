// The trading dashboard: one subscription per shown sector, `trading:<sector>`, whose
// publications are ticks {s: symbol, p: price, n: the symbol's tick count, t: publish time
// in ms}. Ticks are applied to a map as they arrive and drawn once per animation frame, so
// a burst costs one render; `n` keeps a symbol from going back to an older price.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const HISTORY = 240;
const FLASH_UP = [{ backgroundColor: "rgba(15, 157, 88, 0.25)" }, { backgroundColor: "transparent" }];
const FLASH_DOWN = [{ backgroundColor: "rgba(217, 48, 37, 0.22)" }, { backgroundColor: "transparent" }];
const FLASH = { duration: 700, easing: "ease-out" };

const rows = new Map(); // symbol -> {row, price, change, ticks, open, p, n}
const pending = new Map(); // symbol -> the latest tick not drawn yet
const latencies = []; // [render time, ms from publish to render] over the last second
let sectors = {};
let sector = null;
let subs = [];
let selected = null;
let chart = null;
let chartData = [[], []];
let chartSeq = 0;
let frame = 0;

// What the tests read: each shown symbol's [tick count, price], and the latency readout.
window.trading = {
  shown: () => Object.fromEntries([...rows].map(([s, r]) => [s, [r.n, r.p]])),
  chartPoints: () => chartData[0].length,
  latency: null,
  received: 0,
  boards: 0,
};

const centrifuge = new Centrifuge(`${wsScheme}//${location.host}/connection/websocket`, {
  getToken: async () => {
    const user = `viewer-${Math.floor(Math.random() * 1e6)}`;
    const response = await fetch(`/demo/token?user=${user}`);
    if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
    return (await response.json()).token;
  },
});
centrifuge.on("connecting", () => setStatus("connecting"));
centrifuge.on("connected", () => { setStatus("connected"); $("error").textContent = ""; });
centrifuge.on("disconnected", (ctx) => { setStatus("disconnected"); $("error").textContent = ctx.reason; });

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function formatChange(price, open) {
  const change = (price / open - 1) * 100;
  return `${change >= 0 ? "+" : ""}${change.toFixed(2)}%`;
}

function buildBoard(members) {
  rows.clear();
  pending.clear();
  const body = $("board").tBodies[0];
  body.replaceChildren(...members.map((m) => {
    const row = document.createElement("tr");
    row.dataset.symbol = m.s;
    row.innerHTML = '<td class="sym"></td><td class="num price"></td><td class="num change"></td><td class="num ticks"></td>';
    const [sym, price, change, ticks] = row.children;
    sym.textContent = m.s;
    const entry = { row, price, change, ticks, open: m.o, p: m.p, n: m.n };
    rows.set(m.s, entry);
    paint(entry);
    row.addEventListener("click", () => select(m.s));
    return row;
  }));
}

function paint(entry) {
  entry.price.textContent = entry.p.toFixed(2);
  entry.change.textContent = formatChange(entry.p, entry.open);
  entry.change.className = `num change ${entry.p >= entry.open ? "up" : "down"}`;
  entry.ticks.textContent = entry.n;
  entry.row.dataset.seq = entry.n;
}

function onTick(tick) {
  window.trading.received++;
  const entry = rows.get(tick.s);
  if (!entry || tick.n <= entry.n) return;
  const waiting = pending.get(tick.s);
  if (!waiting || tick.n > waiting.n) pending.set(tick.s, tick);
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const now = Date.now();
  let charted = false;
  for (const [symbol, tick] of pending) {
    const entry = rows.get(symbol);
    if (!entry || tick.n <= entry.n) continue;
    const up = tick.p >= entry.p;
    entry.p = tick.p;
    entry.n = tick.n;
    paint(entry);
    entry.price.animate(up ? FLASH_UP : FLASH_DOWN, FLASH);
    if (tick.t) latencies.push([now, now - tick.t]);
    if (symbol === selected && tick.t && tick.n > chartSeq) {
      chartSeq = tick.n;
      chartData[0].push(tick.t / 1000);
      chartData[1].push(tick.p);
      charted = true;
    }
  }
  pending.clear();
  if (charted) drawChart();
}

function drawChart() {
  if (chartData[0].length > HISTORY) chartData = chartData.map((column) => column.slice(-HISTORY));
  const entry = rows.get(selected);
  if (entry) {
    $("chart-price").textContent = entry.p.toFixed(2);
    $("chart-change").textContent = formatChange(entry.p, entry.open);
    $("chart-change").className = `change ${entry.p >= entry.open ? "up" : "down"}`;
  }
  if (chart) chart.setData(chartData);
}

// Every 250 ms: the median latency of the last second's renders.
setInterval(() => {
  const since = Date.now() - 1000;
  while (latencies.length && latencies[0][0] < since) latencies.shift();
  if (!latencies.length) return;
  const sorted = latencies.map(([, ms]) => ms).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  window.trading.latency = median;
  $("latency").textContent = `${Math.max(median, 0)} ms`;
}, 250);

async function showFeedStats() {
  try {
    const stats = await (await fetch("stats")).json();
    $("feed").textContent = `${Math.round(stats.ticks_per_second).toLocaleString("en")} ticks/s · ` +
      `${(stats.cpu * 100).toFixed(1)}% of a core`;
  } catch {
    $("feed").textContent = "–";
  }
}

async function select(symbol) {
  selected = symbol;
  for (const [s, entry] of rows) entry.row.setAttribute("aria-selected", String(s === symbol));
  $("chart-symbol").textContent = symbol;
  chartData = [[], []];
  chartSeq = 0;
  drawChart();
  // The recent ticks from the server; live ones that arrive meanwhile are merged by tick count.
  const result = await centrifuge.rpc("trading.history", { symbol });
  if (selected !== symbol) return;
  const live = chartData[0].map((t, i) => [t, chartData[1][i]]);
  const ticks = result.data.ticks.filter(([n]) => n > 0);
  const lastSeq = ticks.length ? ticks[ticks.length - 1][0] : 0;
  chartData = [ticks.map(([, t]) => t), ticks.map(([, , p]) => p)];
  for (const [t, p] of live) {
    if (t > (chartData[0][chartData[0].length - 1] || 0)) { chartData[0].push(t); chartData[1].push(p); }
  }
  chartSeq = Math.max(chartSeq, lastSeq);
  drawChart();
}

// A sector is one channel; "all" subscribes to every sector's channel.
async function show(name) {
  for (const sub of subs) {
    sub.unsubscribe();
    centrifuge.removeSubscription(sub);
  }
  sector = name;
  for (const button of $("sectors").children) button.setAttribute("aria-pressed", String(button.value === name));
  const names = name === "all" ? Object.keys(sectors) : [name];
  const members = names.flatMap((n) => sectors[n]);
  buildBoard(members);
  subs = names.flatMap((n) => {
    const ticks = centrifuge.newSubscription(`trading:${n}`);
    ticks.on("publication", (ctx) => onTick(ctx.data));
    // Ticks missed before subscribing, or while reconnecting, aren't replayed (the channel
    // keeps no history): the sector's board, in cache recovery mode, brings its latest
    // prices first on every (re)subscribe, then once a second.
    const board = centrifuge.newSubscription(`board:${n}`);
    board.on("publication", (ctx) => onBoard(ctx.data));
    ticks.subscribe();
    board.subscribe();
    return [ticks, board];
  });
  select(members[0].s);
}

function onBoard(prices) {
  window.trading.boards++;
  for (const [s, [n, p]] of Object.entries(prices)) onTick({ s, n, p, t: 0 });
}

function makeChart() {
  const element = $("chart");
  chart = new uPlot({
    width: element.clientWidth,
    height: 300,
    legend: { show: false },
    cursor: { y: false },
    scales: { x: { time: true } },
    axes: [
      { stroke: "#6a7489", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#e3e7ee" } },
      { stroke: "#6a7489", grid: { stroke: "#eef0f4" }, ticks: { stroke: "#e3e7ee" }, size: 60 },
    ],
    series: [{}, { stroke: "#2f6fec", width: 1.5, fill: "rgba(47, 111, 236, 0.08)", points: { show: false } }],
  }, chartData, element);
  window.addEventListener("resize", () => chart.setSize({ width: element.clientWidth, height: 300 }));
}

async function main() {
  if (typeof Centrifuge === "undefined" || typeof uPlot === "undefined") {
    $("error").textContent = "centrifuge.js or uPlot is missing: run `make run`, which installs them from npm";
    return;
  }
  sectors = await (await fetch("sectors")).json();
  for (const name of [...Object.keys(sectors), "all"]) {
    const button = document.createElement("button");
    button.value = name;
    button.textContent = name;
    button.addEventListener("click", () => { location.hash = name; });
    $("sectors").append(button);
  }
  makeChart();
  centrifuge.connect();
  const fromHash = () => {
    const name = location.hash.slice(1);
    show(name === "all" || sectors[name] ? name : Object.keys(sectors)[0]);
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
  showFeedStats();
  setInterval(showFeedStats, 2000);
}

main();
