"use strict";
const $ = (id) => document.getElementById(id);
function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) { const td = document.createElement("td"); td.textContent = cell; tr.appendChild(td); }
  return tr;
}
async function refresh() {
  const response = await fetch("/admin/api/info");
  if (!response.ok) return;
  const info = await response.json();
  $("version").textContent = `v${info.version}`;
  $("num-clients").textContent = info.nodes.reduce((n, x) => n + x.num_clients, 0);
  $("num-users").textContent = info.nodes.reduce((n, x) => n + x.num_users, 0);
  $("num-channels").textContent = Object.keys(info.channels).length;
  $("num-subscriptions").textContent = info.nodes.reduce((n, x) => n + x.num_subscriptions, 0);
  $("nodes").replaceChildren(...info.nodes.map((n) => row([n.name, n.uid, n.num_clients, n.uptime, ...[n.publications, n.messages_sent, n.messages_received].map((count) => count ?? "—")])));
  $("channels").replaceChildren(...Object.entries(info.channels).map(([name, count]) => row([name, count])));
}
$("publish").addEventListener("submit", async (event) => {
  event.preventDefault();
  let data;
  try { data = JSON.parse($("data").value); } catch (err) { $("result").textContent = `invalid JSON: ${err.message}`; return; }
  const response = await fetch("/admin/api/publish", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ channel: $("channel").value, data }),
  });
  const body = await response.json();
  $("result").textContent = response.ok ? `published${body.offset ? ` at offset ${body.offset}` : ""}` : body.error;
});
refresh();
setInterval(refresh, 2000);
