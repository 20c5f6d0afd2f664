// Collaborative editing: a Y.Text bound to a textarea, synced through `collab:<doc>` over
// centrifuge-js's protobuf build, so publications are bytes. Byte 0 of each says what it
// is: 0, a Yjs update; 1, where its sender's cursor is (a Yjs relative position).
//
// On every subscribe (the first and after each reconnect) the page calls `collab.sync`
// with its state vector, applies what the server had and it lacked, and publishes what it
// has that the server lacks: the edits made while offline.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const UPDATE = 0;
const CURSOR = 1;
const LOCAL = "local";

const params = new URLSearchParams(location.search);
const docName = /^[\w-]{1,32}$/.test(params.get("doc") || "") ? params.get("doc") : "welcome";
const userName = /^[\w .-]{1,32}$/.test(params.get("name") || "") ? params.get("name") : `guest-${Math.floor(Math.random() * 1e4)}`;
const channel = `collab:${docName}`;

const doc = new Y.Doc();
const ytext = doc.getText("text");
const textarea = $("text");
const cursors = new Map(); // client id -> {user, position: encoded relative position}
let value = "";
let sub = null;
let client = null; // this connection's id: its own cursor publications come back too

// What the tests read: the page's text and whether it synced since it last subscribed.
window.collab = { text: () => ytext.toString(), synced: false, cursors: () => cursorIndexes() };

function frame(kind, bytes) {
  const message = new Uint8Array(bytes.length + 1);
  message[0] = kind;
  message.set(bytes, 1);
  return message;
}

function hue(user) {
  let h = 0;
  for (const c of user) h = (h * 31 + c.charCodeAt(0)) % 360;
  return `hsl(${h} 65% 48%)`;
}

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function publish(message) {
  if (!sub || sub.state !== "subscribed") return; // the next sync sends it
  sub.publish(message).catch((err) => { $("error").textContent = `publish: ${err.message || err.code}`; });
}

// Local edits: the textarea's change as one delete and one insert, found by the common
// prefix and suffix of its old and new value.
textarea.addEventListener("input", () => {
  const next = textarea.value;
  let start = 0;
  while (start < value.length && start < next.length && value[start] === next[start]) start++;
  let end = 0;
  while (end < value.length - start && end < next.length - start
         && value[value.length - 1 - end] === next[next.length - 1 - end]) end++;
  doc.transact(() => {
    if (value.length - start - end) ytext.delete(start, value.length - start - end);
    if (next.length - start - end) ytext.insert(start, next.slice(start, next.length - end));
  }, LOCAL);
  value = next;
  sendCursor();
});

doc.on("update", (update, origin) => {
  if (origin === LOCAL) publish(frame(UPDATE, update));
});

// A position in the text, moved by a change (a Yjs delta) made elsewhere.
function shift(index, delta) {
  let at = 0;
  for (const op of delta) {
    if (op.retain) at += op.retain;
    else if (op.insert) {
      if (at < index) index += op.insert.length;
      at += op.insert.length;
    } else if (op.delete && index > at) index -= Math.min(op.delete, index - at);
  }
  return index;
}

// Remote edits: the new text, with this page's selection kept where it was.
ytext.observe((event, transaction) => {
  if (transaction.origin === LOCAL) return;
  const focused = document.activeElement === textarea;
  const start = shift(textarea.selectionStart, event.delta);
  const end = shift(textarea.selectionEnd, event.delta);
  textarea.value = value = ytext.toString();
  if (focused) textarea.setSelectionRange(start, end);
  drawCursors();
});

let cursorTimer = null;
function sendCursor() {
  if (cursorTimer) return;
  cursorTimer = setTimeout(() => {
    cursorTimer = null;
    const position = Y.createRelativePositionFromTypeIndex(ytext, textarea.selectionStart);
    publish(frame(CURSOR, Y.encodeRelativePosition(position)));
  }, 100);
}
for (const type of ["keyup", "click", "focus"]) textarea.addEventListener(type, sendCursor);

function cursorIndexes() {
  const indexes = {};
  for (const { user, position } of cursors.values()) {
    const absolute = Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(position), doc);
    if (absolute) indexes[user] = absolute.index;
  }
  return indexes;
}

// Other people's cursors, drawn in a transparent copy of the text laid over the textarea.
function drawCursors() {
  const marks = Object.entries(cursorIndexes()).sort((a, b) => a[1] - b[1]);
  const text = ytext.toString();
  const parts = [];
  let at = 0;
  for (const [user, index] of marks) {
    parts.push(document.createTextNode(text.slice(at, index)));
    const caret = document.createElement("span");
    caret.className = "caret";
    caret.dataset.user = user;
    caret.style.setProperty("--c", hue(user));
    parts.push(caret);
    at = index;
  }
  parts.push(document.createTextNode(text.slice(at) + "\n"));
  $("mirror").replaceChildren(...parts);
  $("mirror").scrollTop = textarea.scrollTop;
}
textarea.addEventListener("scroll", () => { $("mirror").scrollTop = textarea.scrollTop; });

async function showPeople() {
  try {
    const result = await sub.presence();
    const users = new Set(Object.values(result.clients).map((c) => c.user));
    $("people").replaceChildren(...[...users].sort().map((user) => {
      const item = document.createElement("li");
      item.textContent = user;
      item.style.setProperty("--c", hue(user));
      if (user === userName) item.className = "me";
      return item;
    }));
  } catch (err) {
    $("error").textContent = `presence: ${err.message || err.code}`;
  }
}

async function sync() {
  window.collab.synced = false;
  delete document.body.dataset.synced;
  const name = new TextEncoder().encode(docName);
  const stateVector = Y.encodeStateVector(doc);
  const request = new Uint8Array(1 + name.length + stateVector.length);
  request[0] = name.length;
  request.set(name, 1);
  request.set(stateVector, 1 + name.length);
  const { data } = await centrifuge.rpc("collab.sync", request);
  const length = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  Y.applyUpdate(doc, data.subarray(4, 4 + length), "server");
  const mine = Y.encodeStateAsUpdate(doc, data.subarray(4 + length));
  if (mine.length > 2) publish(frame(UPDATE, mine)); // [0, 0] is the empty update
  textarea.disabled = false;
  window.collab.synced = true;
  document.body.dataset.synced = "true";
  sendCursor();
}

const centrifuge = new Centrifuge(`${wsScheme}//${location.host}/connection/websocket`, {
  protocol: "protobuf",
  getToken: async () => {
    const response = await fetch(`/demo/token?user=${encodeURIComponent(userName)}`);
    if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
    return (await response.json()).token;
  },
});
centrifuge.on("connecting", () => setStatus(navigator.onLine ? "connecting" : "offline"));
centrifuge.on("connected", (ctx) => { client = ctx.client; setStatus("connected"); $("error").textContent = ""; });
centrifuge.on("disconnected", () => setStatus(navigator.onLine ? "disconnected" : "offline"));

// Offline, the page keeps editing its own copy; back online, it reconnects and syncs.
window.addEventListener("offline", () => { centrifuge.disconnect(); setStatus("offline"); });
window.addEventListener("online", () => centrifuge.connect());

sub = centrifuge.newSubscription(channel, { joinLeave: true });
sub.on("publication", (ctx) => {
  const data = ctx.data;
  if (data[0] === UPDATE) {
    Y.applyUpdate(doc, data.subarray(1), "remote");
  } else if (data[0] === CURSOR && ctx.info && ctx.info.client !== client) {
    cursors.set(ctx.info.client, { user: ctx.info.user, position: data.slice(1) });
    drawCursors();
  }
});
sub.on("subscribed", () => {
  sync().catch((err) => { $("error").textContent = `sync: ${err.message || err.code}`; });
  showPeople();
});
sub.on("join", showPeople);
sub.on("leave", (ctx) => {
  cursors.delete(ctx.info.client);
  drawCursors();
  showPeople();
});
sub.subscribe();

$("doc-name").textContent = docName;
$("me").textContent = userName;
centrifuge.connect();
