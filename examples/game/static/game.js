// The arena: subscribing to `game:arena` enters it (the subscribe reply says which player
// this page is); publishing {dx, dy} steers; snapshots {t: tick, p: [[id, user, x, y]]}
// arrive 30 times a second. The canvas draws the players where they were two ticks ago,
// between the two snapshots around that moment, so motion stays smooth however the
// snapshots bunch up on the way.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const TICK_MS = 1000 / 30;
const DELAY_TICKS = 2;
const RADIUS = 16;

const canvas = $("arena");
const context2d = canvas.getContext("2d");
let centrifuge = null;
let sub = null;
let me = null;
let name = "";
let snapshots = []; // the last second of {t, players: Map(id -> [user, x, y])}
let offset = null; // local time of tick 0, the smallest seen: receive time - t * TICK_MS
let input = { dx: 0, dy: 0 };
let received = [];

// What the tests read: players by user in the latest snapshot, and who presence lists.
window.game = {
  me: () => me,
  positions: () => {
    const last = snapshots[snapshots.length - 1];
    return last ? Object.fromEntries([...last.players.values()].map(([user, x, y]) => [user, [x, y]])) : {};
  },
};

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function hue(user) {
  let h = 0;
  for (const c of user) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function onSnapshot(data) {
  const now = performance.now();
  const players = new Map(data.p.map(([id, user, x, y]) => [id, [user, x, y]]));
  const start = now - data.t * TICK_MS;
  if (offset === null || start < offset) offset = start;
  snapshots.push({ t: data.t, players });
  while (snapshots.length > 30) snapshots.shift();
  received.push(now);
  $("tick").textContent = data.t;
}

// Where each player is at `tick` (fractional): between the snapshots around it.
function positionsAt(tick) {
  let before = null;
  let after = null;
  for (const snapshot of snapshots) {
    if (snapshot.t <= tick) before = snapshot;
    else { after = snapshot; break; }
  }
  if (!before) return after ? after.players : new Map();
  if (!after) return before.players;
  const k = (tick - before.t) / (after.t - before.t);
  const players = new Map();
  for (const [id, [user, x, y]] of after.players) {
    const old = before.players.get(id);
    players.set(id, old ? [user, old[1] + (x - old[1]) * k, old[2] + (y - old[2]) * k] : [user, x, y]);
  }
  return players;
}

function draw() {
  const { width, height } = canvas;
  context2d.clearRect(0, 0, width, height);
  context2d.strokeStyle = "#eef0f4";
  context2d.lineWidth = 1;
  for (let x = 60; x < width; x += 60) { context2d.beginPath(); context2d.moveTo(x, 0); context2d.lineTo(x, height); context2d.stroke(); }
  for (let y = 60; y < height; y += 60) { context2d.beginPath(); context2d.moveTo(0, y); context2d.lineTo(width, y); context2d.stroke(); }
  if (offset !== null) {
    const tick = (performance.now() - offset) / TICK_MS - DELAY_TICKS;
    for (const [id, [user, x, y]] of positionsAt(tick)) {
      const color = `hsl(${hue(user)} 70% 50%)`;
      context2d.beginPath();
      context2d.arc(x, y, RADIUS, 0, Math.PI * 2);
      context2d.fillStyle = color;
      context2d.fill();
      if (id === me) {
        context2d.lineWidth = 3;
        context2d.strokeStyle = "#1b2230";
        context2d.stroke();
      }
      context2d.fillStyle = "#1b2230";
      context2d.font = "600 13px system-ui, sans-serif";
      context2d.textAlign = "center";
      context2d.fillText(user, x, y - RADIUS - 6);
    }
  }
  requestAnimationFrame(draw);
}

setInterval(() => {
  const since = performance.now() - 1000;
  received = received.filter((t) => t >= since);
  $("rate").textContent = received.length;
}, 500);

async function showPlayers() {
  if (!sub) return;
  try {
    const result = await sub.presence();
    const users = new Set(Object.values(result.clients).map((c) => c.user));
    $("players").replaceChildren(...[...users].sort().map((user) => {
      const item = document.createElement("li");
      item.textContent = user;
      item.style.setProperty("--dot", `hsl(${hue(user)} 70% 50%)`);
      if (user === name) item.className = "me";
      return item;
    }));
  } catch (err) {
    $("error").textContent = `presence: ${err.message || err.code}`;
  }
}

const KEYS = {
  ArrowLeft: ["dx", -1], KeyA: ["dx", -1], ArrowRight: ["dx", 1], KeyD: ["dx", 1],
  ArrowUp: ["dy", -1], KeyW: ["dy", -1], ArrowDown: ["dy", 1], KeyS: ["dy", 1],
};
const held = new Set();

function steer() {
  const next = { dx: 0, dy: 0 };
  for (const code of held) {
    const [axis, value] = KEYS[code];
    next[axis] = Math.max(-1, Math.min(1, next[axis] + value));
  }
  if (next.dx === input.dx && next.dy === input.dy) return;
  input = next;
  if (sub && sub.state === "subscribed") sub.publish(input).catch((err) => { $("error").textContent = `input: ${err.message}`; });
}

window.addEventListener("keydown", (event) => {
  if (!KEYS[event.code] || event.target instanceof HTMLInputElement) return;
  event.preventDefault();
  held.add(event.code);
  steer();
});
window.addEventListener("keyup", (event) => {
  if (!held.delete(event.code)) return;
  steer();
});
window.addEventListener("blur", () => { held.clear(); steer(); });

function join(user) {
  name = user;
  if (!centrifuge) {
    centrifuge = new Centrifuge(`${wsScheme}//${location.host}/connection/websocket`, {
      getToken: async () => {
        const response = await fetch(`/demo/token?user=${encodeURIComponent(name)}`);
        if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
        return (await response.json()).token;
      },
    });
    centrifuge.on("connecting", () => setStatus("connecting"));
    centrifuge.on("connected", () => { setStatus("connected"); $("error").textContent = ""; });
    centrifuge.on("disconnected", () => setStatus("disconnected"));
    sub = centrifuge.newSubscription("game:arena", { joinLeave: true });
    sub.on("publication", (ctx) => onSnapshot(ctx.data));
    sub.on("subscribed", (ctx) => {
      me = ctx.data.id;
      document.body.dataset.player = me;
      input = { dx: 0, dy: 0 };
      showPlayers();
    });
    sub.on("join", showPlayers);
    sub.on("leave", showPlayers);
    sub.on("error", (ctx) => { $("error").textContent = `arena: ${ctx.error.message}`; });
    sub.subscribe();
  }
  snapshots = [];
  offset = null;
  centrifuge.connect();
  $("join").hidden = true;
  $("leave").hidden = false;
  canvas.focus();
}

function leave() {
  centrifuge.disconnect();
  me = null;
  delete document.body.dataset.player;
  snapshots = [];
  $("players").replaceChildren();
  $("join").hidden = false;
  $("leave").hidden = true;
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  join($("name").value.trim());
});
$("leave").addEventListener("click", leave);

if (typeof Centrifuge === "undefined") {
  $("error").textContent = "centrifuge.js is missing: run `make run`, which installs it from npm";
} else {
  const preset = new URLSearchParams(location.search).get("name");
  if (preset) join(preset);
  requestAnimationFrame(draw);
}
