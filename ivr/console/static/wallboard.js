// The live wallboard: one Server-Sent Events stream of snapshots; supervisor buttons post
// agent actions with the session's CSRF token. No library, no CDN: the console works offline.
"use strict";

let csrf = "";

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;  // text only: nothing from the server is parsed as HTML
  if (cls) td.className = cls;
  return td;
}

function fill(id, items, render) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  for (const item of items) render(body.insertRow(), item);
  if (!items.length) {
    const row = body.insertRow();
    const td = cell(row, "none");
    td.colSpan = 7;
  }
}

async function act(agent, action) {
  const msg = document.getElementById("message");
  const reply = await fetch("/api/agents/" + encodeURIComponent(agent) + "/" + action, {
    method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    body: JSON.stringify({reason: action === "pause" ? "console" : ""}),
  });
  const answer = await reply.json();
  msg.textContent = reply.ok ? "" : (answer.error || "refused");
}

function agentRow(row, a) {
  row.dataset.agent = a.id;
  cell(row, a.id);
  cell(row, a.name);
  const span = document.createElement("span");
  span.className = "state " + a.state;
  span.textContent = a.state + (a.pending ? " (then " + a.pending + ")" : "");
  row.insertCell().append(span);
  cell(row, duration(a.in_state), "num");
  cell(row, a.reason || "");
  cell(row, String(a.calls), "num");
  const controls = cell(row, "", "control");
  const actions = a.state === "logged_out" ? ["login"] :
    a.state === "paused" ? ["resume", "logout"] : ["pause", "logout"];
  for (const action of actions) {
    const button = document.createElement("button");
    button.textContent = action;
    button.dataset.action = action;
    button.addEventListener("click", () => act(a.id, action));
    controls.append(button);
  }
}

function show(snap) {
  const health = document.getElementById("health");
  health.textContent = snap.health.ready ? "ready" : snap.health.draining ? "draining" : "starting";
  health.className = "pill " + (snap.health.ready ? "ready" : "down");
  const t = snap.today || {};
  document.getElementById("offered").textContent = t.offered ?? "–";
  document.getElementById("answered").textContent = t.answered ?? "–";
  document.getElementById("abandoned").textContent = t.abandoned ?? "–";
  document.getElementById("service-level").textContent =
    t.service_level == null ? "–" : Math.round(t.service_level * 100) + "%";
  document.getElementById("active").textContent = snap.active;
  fill("calls", snap.calls, (row, c) => {
    row.dataset.flow = c.flow; row.dataset.node = c.node;
    cell(row, c.flow); cell(row, c.node); cell(row, String(c.calls), "num");
  });
  fill("queues", snap.queues, (row, q) => {
    row.dataset.queue = q.name;
    cell(row, q.name); cell(row, String(q.waiting), "num");
    cell(row, q.waiting ? duration(q.longest_wait) : "–", "num");
    cell(row, String(q.able_agents), "num");
  });
  fill("agents", snap.agents, agentRow);
  document.dispatchEvent(new CustomEvent("snapshot", {detail: snap}));  // livecalls.js
}

async function start() {
  const reply = await fetch("/api/me");
  if (reply.status === 401) { location.href = "/login"; return; }
  const me = await reply.json();
  csrf = me.csrf;
  document.getElementById("who").textContent = me.user + " (" + me.role + ")";
  document.body.classList.toggle("may-control", me.may_control);
  const logout = document.getElementById("logout");
  logout.hidden = !me.logged_in;  // no users configured: nobody logs in or out
  logout.addEventListener("click", async () => {
    await fetch("/logout", {method: "POST", headers: {"X-CSRF-Token": csrf}});
    location.href = "/login";
  });
  const stream = new EventSource("/api/events");
  stream.onmessage = (e) => show(JSON.parse(e.data));
  stream.addEventListener("expired", () => { stream.close(); location.href = "/login"; });
  stream.onerror = () => {
    const health = document.getElementById("health");
    health.textContent = "reconnecting…"; health.className = "pill down";
  };
}

start();
