// A centrifuge-js client on Node with the `ws` package, driven by wavecast's e2e tests.
//
//   node client.js OPTIONS_JSON
//
// OPTIONS_JSON: {"url": "ws://...", "token": "...", "tokens": ["...", ...] (handed out by
//                getToken, in order), "mint": {"secret": "...", "sub": "...", "ttl": SECONDS}
//                (getToken signs a fresh HS256 token each time), "name": "...", "data": {...},
//                "protobuf": true (the SDK's protobuf build; every data field, sent or received,
//                is then a hex string standing for a Uint8Array), "transports": [{"transport":
//                "websocket" | "http_stream" | "sse", "endpoint": "..."}, ...] (instead of url: the
//                SDK tries them in order and falls back, with Node's fetch and the eventsource
//                package), "emulationEndpoint": "http://.../emulation" (where HTTP-streaming and
//                SSE clients POST their commands; Node's fetch needs an absolute URL)}
//
// Commands come as JSON lines on stdin: {"id": N, "op": OP, ...}, with OP one of
//   connect, disconnect, subscribe {channel, token?, tokens?, mint?, joinLeave?, recoverable?,
//   positioned?, since? ({offset?, epoch?}: recover from there; {} asks for a cache channel's
//   latest publication), delta?, tagsFilter?, wait?}, unsubscribe {channel}, publish {channel,
//   data}, send {data}, presence {channel}, presenceStats {channel}, history {channel, limit?,
//   since?, reverse?}, rpc {method, data}, deltaStats {channel}, state.
// Each command answers with {"event": "result", "id": N, "ok": true, "value": ...} or
// {"event": "result", "id": N, "ok": false, "error": {"code": ..., "message": ...}}.
//
// Events are printed as JSON lines too: connecting, connected, disconnected, error, message
// (an asynchronous message from the server), and per
// subscription subscribing, subscribed, unsubscribed, publication, join, leave, sub_error;
// and server-side subscription events prefixed with "server_". EOF on stdin disconnects and exits.
"use strict";

const crypto = require("crypto");
const readline = require("readline");
const WebSocket = require("ws");
const { EventSource } = require("eventsource");
const options = JSON.parse(process.argv[2]);
const { Centrifuge } = options.protobuf ? require("centrifuge/build/protobuf") : require("centrifuge");

// In protobuf mode, data travels as bytes: hex strings in this script's JSON lines.
function toData(value) {
  if (!options.protobuf || value === undefined || value === null) return value;
  return new Uint8Array(Buffer.from(value, "hex"));
}

// The protobuf build decodes 64-bit fields (offsets) to Long objects where the long package
// is installed, as it is here; the tests read plain numbers.
function num(value) {
  return value !== null && typeof value === "object" && typeof value.toNumber === "function" ? value.toNumber() : value;
}

function fromData(value) {
  if (!options.protobuf || value === undefined || value === null) return value;
  if (!(value instanceof Uint8Array)) throw new Error(`expected bytes, got ${typeof value}`);
  return Buffer.from(value).toString("hex");
}

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function errorOf(err) {
  if (err && typeof err === "object") {
    return { code: err.code, message: err.message, temporary: err.temporary };
  }
  return { code: -1, message: String(err) };
}

// An HS256 JWT, as PyJWT makes them.
function mintToken({ secret, sub, ttl }, channel) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const claims = { sub, exp: Math.floor(Date.now() / 1000 + ttl) };
  if (channel !== undefined) claims.channel = channel;
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = crypto.createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

const connectionTokens = (options.tokens || []).slice();
const centrifugeOptions = {
  websocket: WebSocket,
  token: options.token || "",
  name: options.name || "e2e-js",
  minReconnectDelay: 50,
  maxReconnectDelay: 200,
  timeout: 5000,
  // No browser here: don't watch for online/offline events.
  networkEventTarget: null,
  eventsource: EventSource,
};
if (options.emulationEndpoint) centrifugeOptions.emulationEndpoint = options.emulationEndpoint;
if (options.data !== undefined) centrifugeOptions.data = toData(options.data);
if (options.mint) {
  centrifugeOptions.getToken = async () => {
    emit({ event: "get_token" });
    return mintToken(options.mint);
  };
} else if (options.tokens) {
  centrifugeOptions.getToken = async () => {
    emit({ event: "get_token" });
    if (!connectionTokens.length) throw new Error("no more tokens");
    return connectionTokens.shift();
  };
}

const client = new Centrifuge(options.transports || options.url, centrifugeOptions);

client.on("connecting", (ctx) => emit({ event: "connecting", code: ctx.code, reason: ctx.reason }));
client.on("connected", (ctx) =>
  emit({ event: "connected", client: ctx.client, transport: ctx.transport, data: fromData(ctx.data) })
);
client.on("disconnected", (ctx) => emit({ event: "disconnected", code: ctx.code, reason: ctx.reason }));
client.on("error", (ctx) => emit({ event: "error", type: ctx.type, error: errorOf(ctx.error) }));
client.on("message", (ctx) => emit({ event: "message", data: fromData(ctx.data) }));
client.on("subscribed", (ctx) =>
  emit({ event: "server_subscribed", channel: ctx.channel, recovered: ctx.recovered, wasRecovering: ctx.wasRecovering })
);
client.on("unsubscribed", (ctx) => emit({ event: "server_unsubscribed", channel: ctx.channel }));
client.on("publication", (ctx) =>
  emit({ event: "server_publication", channel: ctx.channel, data: fromData(ctx.data), offset: num(ctx.offset) })
);

function subscription(channel, command) {
  const existing = client.getSubscription(channel);
  if (existing) return existing;
  const subOptions = {};
  if (command.token) subOptions.token = command.token;
  if (command.mint) {
    subOptions.getToken = async () => {
      emit({ event: "get_sub_token", channel });
      return mintToken(command.mint, channel);
    };
  } else if (command.tokens) {
    const tokens = command.tokens.slice();
    subOptions.getToken = async () => {
      emit({ event: "get_sub_token", channel });
      if (!tokens.length) throw new Error("no more tokens");
      return tokens.shift();
    };
  }
  if (command.joinLeave) subOptions.joinLeave = true;
  if (command.recoverable) subOptions.recoverable = true;
  if (command.positioned) subOptions.positioned = true;
  if (command.since) subOptions.since = command.since;
  if (command.delta) subOptions.delta = command.delta;
  if (command.tagsFilter) subOptions.tagsFilter = command.tagsFilter;
  const sub = client.newSubscription(channel, subOptions);
  sub.on("subscribing", (ctx) => emit({ event: "subscribing", channel, code: ctx.code, reason: ctx.reason }));
  sub.on("subscribed", (ctx) =>
    emit({
      event: "subscribed",
      channel,
      recoverable: ctx.recoverable,
      positioned: ctx.positioned,
      wasRecovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      streamPosition: ctx.streamPosition ? { offset: num(ctx.streamPosition.offset), epoch: ctx.streamPosition.epoch } : null,
      data: ctx.data === undefined ? null : fromData(ctx.data),
      delta: sub._delta_negotiated,
    })
  );
  sub.on("unsubscribed", (ctx) => emit({ event: "unsubscribed", channel, code: ctx.code, reason: ctx.reason }));
  sub.on("publication", (ctx) =>
    emit({
      event: "publication",
      channel,
      data: fromData(ctx.data),
      offset: ctx.offset === undefined ? null : num(ctx.offset),
      user: ctx.info ? ctx.info.user : null,
      tags: ctx.tags || null,
    })
  );
  sub.on("join", (ctx) => emit({ event: "join", channel, user: ctx.info.user, client: ctx.info.client }));
  sub.on("leave", (ctx) => emit({ event: "leave", channel, user: ctx.info.user, client: ctx.info.client }));
  sub.on("error", (ctx) => emit({ event: "sub_error", channel, type: ctx.type, error: errorOf(ctx.error) }));
  return sub;
}

async function run(command) {
  switch (command.op) {
    case "connect":
      client.connect();
      await client.ready(5000);
      return { client: client.state };
    case "disconnect":
      client.disconnect();
      return null;
    case "subscribe": {
      const sub = subscription(command.channel, command);
      sub.subscribe();
      if (command.wait === false) return null;
      await sub.ready(5000);
      return null;
    }
    case "unsubscribe": {
      const sub = client.getSubscription(command.channel);
      sub.unsubscribe();
      client.removeSubscription(sub);
      return null;
    }
    case "publish":
      await client.publish(command.channel, toData(command.data));
      return null;
    case "send":
      await client.send(toData(command.data));
      return null;
    case "presence": {
      const result = await client.presence(command.channel);
      const clients = {};
      for (const [id, info] of Object.entries(result.clients)) {
        clients[id] = { user: info.user, client: info.client, connInfo: fromData(info.connInfo) || null };
      }
      return { clients };
    }
    case "presenceStats":
      return await client.presenceStats(command.channel);
    case "history": {
      const opts = {};
      if (command.limit !== undefined) opts.limit = command.limit;
      if (command.since !== undefined) opts.since = command.since;
      if (command.reverse !== undefined) opts.reverse = command.reverse;
      const result = await client.history(command.channel, opts);
      return {
        epoch: result.epoch,
        offset: num(result.offset),
        publications: result.publications.map((p) => ({ data: fromData(p.data), offset: num(p.offset) })),
      };
    }
    case "rpc": {
      const result = await client.rpc(command.method, toData(command.data));
      return { data: result.data === undefined || result.data === null ? null : fromData(result.data) };
    }
    case "deltaStats":
      return client.getSubscription(command.channel).deltaStats();
    case "state":
      return { client: client.state };
    default:
      throw { code: -2, message: `unknown op ${command.op}` };
  }
}

const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  run(command).then(
    (value) => emit({ event: "result", id: command.id, ok: true, value: value === undefined ? null : value }),
    (err) => emit({ event: "result", id: command.id, ok: false, error: errorOf(err) })
  );
});
input.on("close", () => {
  client.disconnect();
  // Let the close frame go out before exiting.
  setTimeout(() => process.exit(0), 50);
});
