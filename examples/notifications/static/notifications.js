// The notifications demo: one personal channel, notifications:#<me>, that only I may read.
// Its publications are notifications ({type: "notification", ...}) and read markers
// ({type: "read", up_to: offset}, published by the server when some page of mine marks all
// read). Every publication has an offset, so the page keeps one of each whatever way it
// arrived (live, history when the page opens, recovery after a lost connection), and a
// notification is unread when its offset is past the latest marker.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const TOAST_FOR = 6000;

let centrifuge = null;
let me = "";
let sub = null;
let epoch = null;
let notifications = new Map(); // offset -> notification
let readUpTo = 0;

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function showError(text) {
  $("error").textContent = text;
}

function timeOf(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Icons as SVG paths (24x24): emoji fonts aren't everywhere.
const ICONS = {
  like: "M12 20.5s-7.5-4.6-9.6-9.3C1 7.9 3.2 4.5 6.6 4.5c2.1 0 3.6 1.2 5.4 3.1 1.8-1.9 3.3-3.1 5.4-3.1 3.4 0 5.6 3.4 4.2 6.7-2.1 4.7-9.6 9.3-9.6 9.3z",
  comment: "M4 4.5h16a1.5 1.5 0 0 1 1.5 1.5v9a1.5 1.5 0 0 1-1.5 1.5H9l-5 4v-4.2A1.5 1.5 0 0 1 2.5 15V6A1.5 1.5 0 0 1 4 4.5z",
  follow: "M9 4a4 4 0 1 1 0 8 4 4 0 0 1 0-8zm0 10c4 0 7 2 7 5.5V21H2v-1.5C2 16 5 14 9 14zm9.5-6h2v2.5H23v2h-2.5V15h-2v-2.5H16v-2h2.5z",
};

function icon(kind) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add(`icon-${kind}`);
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[kind] || ICONS.like);
  svg.append(path);
  return svg;
}

function render() {
  const offsets = [...notifications.keys()].sort((a, b) => b - a);
  const unread = offsets.filter((offset) => offset > readUpTo).length;
  $("notifications").replaceChildren(...offsets.map((offset) => {
    const n = notifications.get(offset);
    const item = document.createElement("li");
    item.className = "notification";
    item.dataset.offset = offset;
    item.dataset.to = n.to;
    if (offset > readUpTo) item.dataset.unread = "";
    const badge = document.createElement("span");
    badge.className = "icon";
    badge.append(icon(n.kind));
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = n.text;
    const time = document.createElement("time");
    time.textContent = timeOf(n.time);
    item.append(badge, text, time);
    return item;
  }));
  $("empty").hidden = offsets.length > 0;
  $("unread").textContent = String(unread);
  $("unread").dataset.count = String(unread);
  document.title = unread ? `(${unread}) wavecast notifications` : "wavecast notifications";
}

function toast(n) {
  const item = document.createElement("div");
  item.className = "toast";
  const text = document.createElement("span");
  text.textContent = n.text;
  item.append(icon(n.kind), text);
  $("toasts").append(item);
  setTimeout(() => item.remove(), TOAST_FOR);
}

// One publication of my channel, live or not; returns whether it was news.
function take(pub) {
  const data = pub.data || {};
  if (data.type === "read") {
    readUpTo = Math.max(readUpTo, data.up_to);
    return false;
  }
  if (data.type !== "notification" || notifications.has(pub.offset)) return false;
  notifications.set(pub.offset, data);
  return true;
}

async function loadHistory() {
  const result = await sub.history({ limit: 100, reverse: true });
  for (const pub of result.publications) take(pub);
  render();
}

function signIn(name) {
  me = name;
  centrifuge = new Centrifuge(`${wsScheme}//${location.host}/connection/websocket`, {
    getToken: async () => {
      const response = await fetch(`/demo/token?user=${encodeURIComponent(name)}`);
      if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
      return (await response.json()).token;
    },
  });
  centrifuge.on("connecting", () => setStatus("connecting"));
  centrifuge.on("connected", () => { setStatus("connected"); showError(""); });
  centrifuge.on("disconnected", (ctx) => { setStatus("disconnected"); showError(`disconnected: ${ctx.reason}`); });

  sub = centrifuge.newSubscription(`notifications:#${name}`);
  sub.on("subscribed", async (ctx) => {
    document.body.dataset.recovered = String(ctx.recovered);
    const newEpoch = ctx.streamPosition ? ctx.streamPosition.epoch : null;
    if (epoch !== null && newEpoch !== epoch) {
      // A new stream (the server lost its history): what we had is no longer comparable.
      notifications = new Map();
      readUpTo = 0;
    }
    epoch = newEpoch;
    // Recovered publications come as publication events; otherwise read the history.
    if (!ctx.wasRecovering || !ctx.recovered) await loadHistory();
  });
  sub.on("publication", (ctx) => {
    if (take(ctx)) toast(ctx.data);
    render();
  });
  sub.on("error", (ctx) => showError(`subscription: ${ctx.error.message}`));
  sub.subscribe();
  centrifuge.connect();

  $("me").textContent = name;
  $("me").hidden = false;
  $("bell").hidden = false;
  $("to").value = name === "bob" ? "alice" : "bob";
  $("signin").hidden = true;
  $("app").hidden = false;
  render();
}

async function act(kind) {
  const to = $("to").value.trim();
  $("sent").textContent = "";
  const response = await fetch("act", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ actor: me, to, kind }),
  });
  const answer = await response.json();
  $("sent").textContent = response.ok
    ? `Sent to ${answer.channel}, offset ${answer.offset}.`
    : `Refused: ${answer.error}`;
}

// The # boundary at work: the server refuses someone else's personal channel.
function peek() {
  const to = $("to").value.trim();
  const channel = `notifications:#${to}`;
  if (to === me) {
    $("peek").textContent = "That's your own channel: it's on the right.";
    return;
  }
  delete $("peek").dataset.code;
  const old = centrifuge.getSubscription(channel);
  if (old) centrifuge.removeSubscription(old);
  const spy = centrifuge.newSubscription(channel);
  spy.on("subscribed", () => {
    $("peek").textContent = `Subscribed to ${channel}.`;
    centrifuge.removeSubscription(spy);
  });
  // A refusal that retrying won't change ends the subscription with the server's error code.
  spy.on("unsubscribed", (ctx) => {
    if (ctx.code < 100) return; // 0: our own removeSubscription above
    $("peek").dataset.code = String(ctx.code);
    $("peek").textContent = `${channel}: refused with ${ctx.code} ${ctx.reason}.`;
    centrifuge.removeSubscription(spy);
  });
  spy.subscribe();
}

async function markAllRead() {
  const latest = Math.max(0, ...notifications.keys());
  if (latest <= readUpTo) return;
  try {
    // The marker comes back as a publication on my channel, to this page and my others.
    await centrifuge.rpc("notifications.read", { up_to: latest });
  } catch (err) {
    showError(`mark read: ${err.message || err.code}`);
  }
}

$("signin").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("name").value.trim());
});
for (const button of document.querySelectorAll("[data-kind]")) {
  button.prepend(icon(button.dataset.kind));
  button.addEventListener("click", () => act(button.dataset.kind).catch((err) => showError(`act: ${err}`)));
}
$("peek-button").addEventListener("click", peek);
$("mark-read").addEventListener("click", markAllRead);

if (typeof Centrifuge === "undefined") {
  showError("centrifuge.js is missing: run `make deps`, which installs it from npm");
}
