// Bench peer: Node socket.io 4 with a room "bench", for the loadgen's Socket.IO mode.
// Subscribers are Socket.IO clients at /socket.io/ (WebSocket transport only): each joins the room with
// the event "join" (421["join","bench"]), acknowledged (431["ok"]), then receives 42["msg","<payload>"]
// for every message of the publisher. The publisher is a plain `ws` WebSocket at /publish (the same role
// and wire as the other fan-out peers'): each text message is emitted to the room, io.to(room).emit(...).
// perMessageDeflate off, max message 16 MiB; Engine.IO's pings keep their defaults (25 s / 20 s).
// Usage: node node_socketio_server.js [PORT]   (env PORT; NODE_PATH must hold socket.io and ws)
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const { WebSocketServer } = require('ws');
const port = parseInt(process.argv[2] || process.env.PORT || '9001', 10);
const MAX = 16 * 1024 * 1024;
const ROOM = 'bench';
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
// destroyUpgrade: false leaves the upgrades of other paths (/publish) to the listener below.
const io = new Server(server, {
  transports: ['websocket'], perMessageDeflate: false, httpCompression: false, maxHttpBufferSize: MAX,
  serveClient: false, destroyUpgrade: false, cors: { origin: '*' },
});
io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack('ok');
  });
});
const publisher = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX });
server.on('upgrade', (req, sock, head) => {
  if (req.url.split('?')[0] !== '/publish') return; // engine.io's
  publisher.handleUpgrade(req, sock, head, (ws) => {
    ws.on('message', (data, isBinary) => { if (!isBinary) io.to(ROOM).emit('msg', data.toString()); });
  });
});
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => console.log(`node socket.io listening on 127.0.0.1:${port}`));
