// The IoT demo's page: one card per device, fed by two channels each.
//   iot:<id>.readings  what the device measures; the last 60 on opening (history), then live
//   iot:<id>.commands  what the rule and the page tell it; the device's presence there is
//                      what "online" means, and join/leave pushes keep it current
// The page sends a command with the iot.set_target RPC; the card then shows the target the
// device reports in its readings, so it changes only once the device has obeyed.
"use strict";

const $ = (id) => document.getElementById(id);
const wsScheme = location.protocol === "https:" ? "wss:" : "ws:";
const POINTS = 60;
const LOG_SIZE = 10;
const WIDTH = 240;
const HEIGHT = 64;

let centrifuge = null;
let band = 0.5;
const log = new Map(); // "<device>:<offset>" -> entry

function setStatus(state) {
  $("status").dataset.state = state;
  $("status").textContent = state;
}

function showError(text) {
  $("error").textContent = text;
}

const degrees = (value) => `${value.toFixed(1)} °C`;

function describe(command) {
  if (typeof command.heater === "boolean") {
    return `heater ${command.heater ? "on" : "off"}, by the rule: ${command.reason}`;
  }
  if (typeof command.target === "number") return `target ${degrees(command.target)}, by ${command.by}`;
  return JSON.stringify(command);
}

function renderLog() {
  const entries = [...log.values()].sort((a, b) => b.time - a.time).slice(0, LOG_SIZE);
  $("log").replaceChildren(...entries.map((entry) => {
    const item = document.createElement("li");
    item.dataset.device = entry.device;
    const time = document.createElement("time");
    time.textContent = new Date(entry.time).toLocaleTimeString();
    const who = document.createElement("strong");
    who.textContent = entry.label;
    const text = document.createElement("span");
    text.textContent = describe(entry.command);
    item.append(time, who, text);
    return item;
  }));
}

class DeviceCard {
  constructor(device) {
    this.device = device;
    this.readings = new Map(); // offset -> reading
    this.online = new Set(); // the device's client ids in the commands channel's presence
    this.card = $("device-card").content.firstElementChild.cloneNode(true);
    this.card.dataset.device = device.id;
    this.$(".label").textContent = device.label;
    this.$(".id").textContent = device.id;
    this.$(".pid").textContent = device.pid ? `pid ${device.pid}` : "";
    this.$(".set").addEventListener("submit", (event) => {
      event.preventDefault();
      this.setTarget(Number(this.$(".target-input").value));
    });
    $("devices").append(this.card);
    this.subscribeReadings();
    this.subscribeCommands();
  }

  $(selector) {
    return this.card.querySelector(selector);
  }

  subscribeReadings() {
    const sub = centrifuge.newSubscription(`iot:${this.device.id}.readings`);
    sub.on("publication", (ctx) => this.reading(ctx.data, ctx.offset));
    sub.on("subscribed", async (ctx) => {
      if (ctx.wasRecovering && ctx.recovered) return; // the missed readings came as publications
      const result = await sub.history({ limit: POINTS, reverse: true });
      for (const pub of result.publications) this.reading(pub.data, pub.offset);
    });
    sub.subscribe();
  }

  subscribeCommands() {
    const sub = centrifuge.newSubscription(`iot:${this.device.id}.commands`, { joinLeave: true });
    sub.on("publication", (ctx) => this.command(ctx.data, ctx.offset));
    sub.on("join", (ctx) => {
      if (ctx.info.user === this.device.id) this.online.add(ctx.info.client);
      this.renderOnline();
    });
    sub.on("leave", (ctx) => {
      this.online.delete(ctx.info.client);
      this.renderOnline();
    });
    sub.on("subscribed", async (ctx) => {
      const presence = await sub.presence();
      this.online = new Set(Object.values(presence.clients).filter((c) => c.user === this.device.id).map((c) => c.client));
      this.renderOnline();
      if (ctx.wasRecovering && ctx.recovered) return;
      const result = await sub.history({ limit: LOG_SIZE, reverse: true });
      for (const pub of result.publications) this.command(pub.data, pub.offset);
    });
    sub.subscribe();
  }

  renderOnline() {
    const online = this.online.size > 0;
    this.card.dataset.online = String(online);
    this.$(".online").textContent = online ? "online" : "offline";
  }

  reading(data, offset) {
    this.readings.set(offset, data);
    const offsets = [...this.readings.keys()].sort((a, b) => a - b);
    for (const old of offsets.slice(0, -POINTS)) this.readings.delete(old);
    const latest = this.readings.get(offsets[offsets.length - 1]);
    this.$(".temperature").textContent = degrees(latest.temperature);
    this.$(".target").textContent = degrees(latest.target);
    const input = this.$(".target-input");
    if (document.activeElement !== input && !input.value) input.value = latest.target;
    this.$(".heater").dataset.on = String(latest.heater);
    this.$(".heater").textContent = latest.heater ? "heater on" : "heater off";
    this.$(".motion").dataset.on = String(latest.motion);
    this.$(".motion").textContent = latest.motion ? "motion" : "no motion";
    this.sparkline(latest.target);
  }

  sparkline(target) {
    const values = [...this.readings.keys()].sort((a, b) => a - b).map((o) => this.readings.get(o).temperature);
    // Scaled to the readings, and to the target's band when it is near them (else it's off the chart).
    const near = Math.abs(target - values[values.length - 1]) < 4 ? [target - band, target + band] : [];
    const low = Math.min(...values, ...near) - 0.5;
    const high = Math.max(...values, ...near) + 0.5;
    const y = (value) => HEIGHT - ((value - low) / (high - low)) * HEIGHT;
    const step = WIDTH / (POINTS - 1);
    const start = WIDTH - (values.length - 1) * step;
    const points = values.map((value, i) => `${(start + i * step).toFixed(1)},${y(value).toFixed(1)}`);
    this.$(".line").setAttribute("points", points.join(" "));
    this.$(".band").setAttribute("y", y(target + band).toFixed(1));
    this.$(".band").setAttribute("height", (y(target - band) - y(target + band)).toFixed(1));
  }

  command(data, offset) {
    log.set(`${this.device.id}:${offset}`, { device: this.device.id, label: this.device.label, command: data, time: data.time || 0 });
    renderLog();
  }

  async setTarget(target) {
    try {
      await centrifuge.rpc("iot.set_target", { device: this.device.id, target });
      showError("");
    } catch (err) {
      showError(`set target: ${err.message || err.code}`);
    }
  }
}

async function main() {
  const response = await fetch("devices");
  const answer = await response.json();
  band = answer.band;
  centrifuge = new Centrifuge(`${wsScheme}//${location.host}/connection/websocket`, {
    getToken: async () => {
      const token = await fetch("/demo/token?user=operator");
      if (!token.ok) throw new Error(`token: HTTP ${token.status}`);
      return (await token.json()).token;
    },
  });
  centrifuge.on("connecting", () => setStatus("connecting"));
  centrifuge.on("connected", () => { setStatus("connected"); showError(""); });
  centrifuge.on("disconnected", (ctx) => { setStatus("disconnected"); showError(`disconnected: ${ctx.reason}`); });
  for (const device of answer.devices) new DeviceCard(device);
  centrifuge.connect();
}

if (typeof Centrifuge === "undefined") {
  showError("centrifuge.js is missing: run `make deps`, which installs it from npm");
} else {
  main().catch((err) => showError(String(err)));
}
