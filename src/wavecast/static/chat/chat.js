// The chat demo: centrifuge-js against wavecast. Publications carry {name, text}; each has
// an offset in the room's stream, which keeps the list in order and free of duplicates
// across reconnects, recoveries and history loads. Offsets count within an epoch: when the
// server comes back without the room's history, a new epoch starts again from 1.
//
// Room "lobby" is two channels: chat:lobby keeps the messages (history, recovery, presence),
// typing:lobby carries "is typing" signals, which have no place in the room's history and
// are worth nothing a few seconds later, so that namespace keeps nothing.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
// WebSocket first; where a proxy or carrier refuses the upgrade, centrifuge-js moves on to
// HTTP-streaming, then SSE, with its further commands POSTed to /emulation. Once one of them
// has connected it stays with it, across reconnects.
const TRANSPORTS = [
  { transport: "websocket", endpoint: `${wsScheme}//${location.host}/connection/websocket` },
  { transport: "http_stream", endpoint: `${location.origin}/connection/http_stream` },
  { transport: "sse", endpoint: `${location.origin}/connection/sse` },
];
// While someone types we say so every TYPING_EVERY ms; a typist we hear nothing from for
// TYPING_FOR ms has stopped (their "stopped" signal may never come: a closed tab, a lost link).
const TYPING_EVERY = 2000;
const TYPING_FOR = 5000;

let centrifuge = null;
let myName = "";
let myClient = null;
let rooms = [];
// The current room: its two subscriptions and what the page knows of its stream.
let room = null;
let sub = null;
let typingSub = null;
let seen = new Set();
let epoch = null;
let typists = new Map(); // client id -> {name, timer}
let typingSentAt = 0; // when we last said we were typing; 0 once we said we stopped

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function showError(text) {
  $("error").textContent = text;
}

// A steady colour per name, so that who said what reads at a glance.
function nameColor(name) {
  let hash = 0;
  for (const char of String(name)) hash = (hash * 31 + char.codePointAt(0)) % 360;
  return `hsl(${hash}, 55%, 38%)`;
}

// A publication of the room: {data: {name, text}, offset, info}. The name shown is the one in
// the publisher's token (info) when there is one; the backend's publications have none.
function addMessage(pub) {
  const { data, offset } = pub;
  if (offset && seen.has(offset)) return;
  if (offset) seen.add(offset);
  const item = document.createElement("li");
  item.className = "message";
  item.dataset.offset = offset || "";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = pub.info ? displayName(pub.info) : data.name;
  who.style.color = nameColor(who.textContent);
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

function displayName(info) {
  return (info.connInfo && info.connInfo.name) || info.user;
}

async function refreshPresence(current) {
  try {
    const result = await current.presence();
    if (current !== sub) return;
    const names = new Set(Object.values(result.clients).map(displayName));
    $("presence").replaceChildren(...[...names].sort().map((name) => {
      const item = document.createElement("li");
      item.textContent = name;
      return item;
    }));
  } catch (err) {
    showError(`presence: ${err.message || err.code}`);
  }
}

async function loadHistory(current) {
  // The latest 50, newest first; addMessage puts them in offset order.
  const result = await current.history({ limit: 50, reverse: true });
  if (current !== sub) return;
  for (const pub of result.publications) addMessage(pub);
}

// --- typing --------------------------------------------------------------------------------

function renderTyping() {
  const names = [...new Set([...typists.values()].map((t) => t.name))].sort();
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = `${names.length} people are typing…`;
  $("typing").textContent = text;
}

function forgetTypist(client) {
  const typist = typists.get(client);
  if (!typist) return;
  clearTimeout(typist.timer);
  typists.delete(client);
  renderTyping();
}

function heardTyping(ctx) {
  const info = ctx.info;
  if (!info || info.client === myClient) return;
  forgetTypist(info.client);
  if (!ctx.data || !ctx.data.typing) return;
  const timer = setTimeout(() => forgetTypist(info.client), TYPING_FOR);
  typists.set(info.client, { name: displayName(info), timer });
  renderTyping();
}

// Say whether we are typing: at most every TYPING_EVERY ms while we are, once when we stop.
function announceTyping(active) {
  if (!typingSub || typingSub.state !== "subscribed") return;
  const now = Date.now();
  if (active ? now - typingSentAt < TYPING_EVERY : typingSentAt === 0) return;
  typingSentAt = active ? now : 0;
  typingSub.publish({ typing: active }).catch(() => { typingSentAt = 0; });
}

// --- rooms ---------------------------------------------------------------------------------

function renderRooms() {
  $("rooms").replaceChildren(...rooms.map((name) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `#${name}`;
    button.dataset.room = name;
    if (name === room) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => enterRoom(name));
    const item = document.createElement("li");
    item.append(button);
    return item;
  }));
}

function leaveRoom() {
  announceTyping(false);
  for (const old of [sub, typingSub]) if (old) centrifuge.removeSubscription(old);
  sub = typingSub = null;
  for (const client of [...typists.keys()]) forgetTypist(client);
}

function enterRoom(name) {
  if (name === room) return;
  leaveRoom();
  room = name;
  seen = new Set();
  epoch = null;
  typists = new Map();
  $("messages").replaceChildren();
  $("presence").replaceChildren();
  $("typing").textContent = "";
  $("room-title").textContent = `#${room}`;
  if (!rooms.includes(room)) rooms.push(room);
  renderRooms();
  history.replaceState(null, "", `#${room}`);

  const current = centrifuge.newSubscription(`chat:${room}`, { joinLeave: true });
  sub = current;
  current.on("publication", (ctx) => {
    addMessage(ctx);
    if (ctx.info) forgetTypist(ctx.info.client); // they sent what they were typing
  });
  current.on("join", () => refreshPresence(current));
  current.on("leave", (ctx) => {
    forgetTypist(ctx.info.client);
    refreshPresence(current);
  });
  current.on("subscribed", async (ctx) => {
    document.body.dataset.recovered = String(ctx.recovered);
    if (ctx.streamPosition) startEpoch(ctx.streamPosition.epoch);
    if (!ctx.wasRecovering || !ctx.recovered) await loadHistory(current);
    await refreshPresence(current);
  });
  current.on("error", (ctx) => showError(`subscription: ${ctx.error.message}`));
  current.subscribe();

  // A server without the typing namespace answers 102 "unknown channel": the chat works without it.
  typingSub = centrifuge.newSubscription(`typing:${room}`);
  typingSub.on("publication", heardTyping);
  typingSub.subscribe();
  $("text").focus();
}

function join(name, firstRoom) {
  myName = name;
  centrifuge = new Centrifuge(TRANSPORTS, {
    getToken: async () => {
      const response = await fetch(`/demo/token?user=${encodeURIComponent(name)}`);
      if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
      return (await response.json()).token;
    },
  });
  centrifuge.on("connecting", () => setStatus("connecting"));
  centrifuge.on("connected", (ctx) => {
    myClient = ctx.client;
    typingSentAt = 0;
    setStatus("connected");
    $("status").dataset.transport = ctx.transport;
    $("status").title = `over ${ctx.transport}`;
    showError("");
  });
  centrifuge.on("disconnected", (ctx) => { setStatus("disconnected"); showError(`disconnected: ${ctx.reason}`); });
  rooms = [...new Set([firstRoom, "lobby", "random"])];
  enterRoom(firstRoom);
  centrifuge.connect();

  $("me").textContent = name;
  $("me").hidden = false;
  $("join").hidden = true;
  $("chat").hidden = false;
}

$("join").addEventListener("submit", (event) => {
  event.preventDefault();
  join($("name").value.trim(), $("room").value.trim());
});

$("switch").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("other-room").value.trim();
  $("other-room").value = "";
  enterRoom(name);
});

$("text").addEventListener("input", () => announceTyping($("text").value.trim() !== ""));

$("send").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  announceTyping(false);
  try {
    await sub.publish({ name: myName, text });
  } catch (err) {
    showError(`send: ${err.message || err.code}`);
    input.value = text;
  }
});

const hashRoom = decodeURIComponent(location.hash.slice(1));
if (/^[\w-]{1,32}$/.test(hashRoom)) $("room").value = hashRoom;

if (typeof Centrifuge === "undefined") {
  showError("centrifuge.js is missing: run `make run`, which installs it from npm");
}
