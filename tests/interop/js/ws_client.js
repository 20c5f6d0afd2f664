// A WebSocket client on the `ws` package, for wavecast's interop tests.
//
//   node ws_client.js URL [OPTIONS_JSON]
//
// Without OPTIONS_JSON, the options are read from stdin (for messages too big for argv).
// OPTIONS_JSON: {"protocols": [...], "deflate": true, "headers": {...},
//                "steps": [{"send": "text"} | {"sendBinary": "<base64>"} |
//                          {"sendFragments": ["a", "b"]} | {"expect": N} | {"ping": "data"} |
//                          {"close": [code, reason]}]}
//
// Prints one JSON object per line: open, message, pong, error, close. Exits after close.
"use strict";

const WebSocket = require("ws");

const url = process.argv[2];

function readOptions() {
  if (process.argv[3] !== undefined) return Promise.resolve(JSON.parse(process.argv[3]));
  return new Promise((resolve) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => (data += chunk));
    process.stdin.on("end", () => resolve(JSON.parse(data || "{}")));
  });
}

function emit(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function main(options) {
  const ws = new WebSocket(url, options.protocols || [], {
    perMessageDeflate: options.deflate !== false,
    headers: options.headers || {},
    handshakeTimeout: 10000,
  });

  let received = 0;
  let onMessage = null;

  function waitForMessages(count) {
    return new Promise((resolve) => {
      if (received >= count) return resolve();
      onMessage = () => {
        if (received >= count) {
          onMessage = null;
          resolve();
        }
      };
    });
  }

  async function run(step) {
    if ("send" in step) {
      ws.send(step.send);
    } else if ("sendBinary" in step) {
      ws.send(Buffer.from(step.sendBinary, "base64"), { binary: true });
    } else if ("sendFragments" in step) {
      const parts = step.sendFragments;
      parts.forEach((part, i) => ws.send(part, { fin: i === parts.length - 1 }));
    } else if ("expect" in step) {
      await waitForMessages(step.expect);
    } else if ("ping" in step) {
      await new Promise((resolve) => {
        ws.once("pong", resolve);
        ws.ping(step.ping);
      });
    } else if ("close" in step) {
      ws.close(step.close[0], step.close[1]);
    }
  }

  ws.on("open", async () => {
    emit({ event: "open", protocol: ws.protocol, extensions: ws.extensions });
    for (const step of options.steps || []) {
      await run(step);
    }
  });

  ws.on("message", (data, isBinary) => {
    received += 1;
    if (isBinary) {
      emit({ event: "message", binary: true, data: data.toString("base64") });
    } else {
      emit({ event: "message", binary: false, data: data.toString("utf8") });
    }
    if (onMessage) onMessage();
  });

  ws.on("pong", (data) => emit({ event: "pong", data: data.toString("utf8") }));

  ws.on("unexpected-response", (request, response) => {
    emit({ event: "unexpected-response", status: response.statusCode });
    request.destroy();
  });

  ws.on("error", (error) => emit({ event: "error", message: String(error.message || error) }));

  ws.on("close", (code, reason) => {
    emit({ event: "close", code, reason: reason.toString("utf8") });
    // Writes to a pipe are asynchronous: exit once everything before is flushed.
    process.stdout.write("", () => process.exit(0));
  });
}

readOptions().then(main);
