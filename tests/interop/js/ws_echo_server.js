// An echo server on the `ws` package, for wavecast's interop tests.
//
//   node ws_echo_server.js
//
// Listens on 127.0.0.1 on a free port and prints {"event": "listening", "port": N}, then one
// JSON object per line for each connection, ping, pong and close. Text messages are echoed,
// except for commands: "close:CODE:REASON" closes the connection and "ping-me" sends a ping.
// Exits when stdin closes, so the test that started it can stop it.
"use strict";

const { WebSocketServer } = require("ws");

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  perMessageDeflate: true,
  handleProtocols: (protocols) => (protocols.has("chat") ? "chat" : false),
});

server.on("listening", () => emit({ event: "listening", port: server.address().port }));

server.on("connection", (ws, request) => {
  emit({
    event: "connection",
    path: request.url,
    protocol: ws.protocol,
    extensions: request.headers["sec-websocket-extensions"] || "",
    userAgent: request.headers["user-agent"] || "",
  });
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString("utf8");
      if (text.startsWith("close:")) {
        const [, code, reason] = text.split(":");
        ws.close(Number(code), reason);
        return;
      }
      if (text === "ping-me") {
        ws.ping("from-node");
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on("ping", (data) => emit({ event: "ping", data: data.toString("utf8") }));
  ws.on("pong", (data) => emit({ event: "pong", data: data.toString("utf8") }));
  ws.on("close", (code, reason) => emit({ event: "close", code, reason: reason.toString("utf8") }));
});

process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
