// The chat demo: centrifuge-js against wavecast. Publications carry {name, text}; each has
// an offset in the room's stream, which keeps the list in order and free of duplicates
// across reconnects, recoveries and history loads. Offsets count within an epoch: when the
// server comes back without the room's history, a new epoch starts again from 1.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const seen = new Set();
let epoch = null;
let centrifuge = null;
let sub = null;

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function showError(text) {
  $("error").textContent = text;
}

function addMessage(data, offset) {
  if (offset && seen.has(offset)) return;
  if (offset) seen.add(offset);
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.offset = offset || "";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = data.name;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = data.text;
  item.append(who, text);
  const list = $("messages");
  // Keep offset order: a recovered or historical message may arrive after a newer one.
  const after = [...list.querySelectorAll("li.message")].find((li) => Number(li.dataset.offset) > offset);
  list.insertBefore(item, after || null);
  list.scrollTop = list.scrollHeight;
}

function addNote(text) {
  const item = document.createElement("li");
  item.className = "system";
  item.textContent = text;
  $("messages").appendChild(item);
}

// A new stream: keep what was said on screen, out of the new stream's order and offsets.
function startEpoch(newEpoch) {
  if (epoch !== null && newEpoch !== epoch) {
    for (const item of $("messages").querySelectorAll("li.message")) {
      item.className = "earlier";
      delete item.dataset.offset;
    }
    seen.clear();
    addNote("The server lost the room's history; new messages follow.");
  }
  epoch = newEpoch;
}

async function refreshPresence() {
  try {
    const result = await sub.presence();
    const names = new Set(Object.values(result.clients).map((c) => (c.connInfo && c.connInfo.name) || c.user));
    const list = $("presence");
    list.replaceChildren(...[...names].sort().map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }));
  } catch (err) {
    showError(`presence: ${err.message || err.code}`);
  }
}

async function loadHistory() {
  // The latest 50, newest first; addMessage puts them in offset order.
  const history = await sub.history({ limit: 50, reverse: true });
  for (const pub of history.publications) addMessage(pub.data, pub.offset);
}

function join(name, room) {
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

  sub = centrifuge.newSubscription(`chat:${room}`, { joinLeave: true });
  sub.on("publication", (ctx) => addMessage(ctx.data, ctx.offset));
  sub.on("join", refreshPresence);
  sub.on("leave", refreshPresence);
  sub.on("subscribed", async (ctx) => {
    document.body.dataset.recovered = String(ctx.recovered);
    if (ctx.streamPosition) startEpoch(ctx.streamPosition.epoch);
    if (!ctx.wasRecovering || !ctx.recovered) await loadHistory();
    await refreshPresence();
  });
  sub.on("error", (ctx) => showError(`subscription: ${ctx.error.message}`));
  sub.subscribe();
  centrifuge.connect();

  $("room-title").textContent = `#${room}`;
  $("join").hidden = true;
  $("chat").hidden = false;
  $("text").focus();
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  join($("name").value.trim(), $("room").value.trim());
});

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  try {
    await sub.publish({ name: $("name").value.trim(), text });
  } catch (err) {
    showError(`send: ${err.message || err.code}`);
    input.value = text;
  }
});

if (typeof Centrifuge === "undefined") {
  showError("centrifuge.js is missing: run `make run`, which installs it from npm");
}
