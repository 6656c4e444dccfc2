// The queue page: the callers waiting, refreshed every 2 seconds; a supervisor moves one to
// another queue or to the head of theirs (POST with the session's CSRF token). No library.
"use strict";

let csrf = "";
let mayControl = false;

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;  // text only: nothing from the server is parsed as HTML
  if (cls) td.className = cls;
  return td;
}

async function move(callId, queue, head) {
  const msg = document.getElementById("message");
  const reply = await fetch("/api/callers/" + encodeURIComponent(callId) + "/move", {
    method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"},
    body: JSON.stringify({queue: queue, head: head}),
  });
  const answer = await reply.json();
  msg.textContent = reply.ok ? "moved " + callId + " to " + answer.queue + ", position " +
    answer.position : (answer.error || "refused");
  msg.className = reply.ok ? "" : "error";
  await refresh();
}

function controls(td, c, queues) {
  const select = document.createElement("select");
  select.className = "move-to";
  for (const q of queues) {
    if (q === c.queue) continue;
    const option = document.createElement("option");
    option.value = q; option.textContent = q;
    select.append(option);
  }
  const to = document.createElement("button");
  to.textContent = "move"; to.dataset.action = "move";
  to.disabled = !select.options.length;
  to.addEventListener("click", () => move(c.call_id, select.value, false));
  const head = document.createElement("button");
  head.textContent = "to head"; head.dataset.action = "head";
  head.disabled = c.position === 1;
  head.addEventListener("click", () => move(c.call_id, null, true));
  td.append(select, to, head);
}

async function refresh() {
  const reply = await fetch("/api/callers");
  if (reply.status === 401) { location.href = "/login"; return; }
  const data = await reply.json();
  const body = document.querySelector("#callers tbody");
  body.replaceChildren();
  for (const c of data.callers || []) {
    const row = body.insertRow();
    row.dataset.call = c.call_id; row.dataset.queue = c.queue;
    cell(row, c.call_id); cell(row, c.queue); cell(row, String(c.position), "num");
    cell(row, duration(c.waited), "num"); cell(row, String(c.priority), "num");
    cell(row, c.callback ? "callback" : String(c.ringing), "num");
    controls(cell(row, "", "control"), c, data.queues || []);
  }
  if (!body.rows.length) cell(body.insertRow(), reply.ok ? "nobody waiting" : data.error).colSpan = 7;
}

async function start() {
  const me = await (await fetch("/api/me")).json();
  csrf = me.csrf || "";
  mayControl = !!me.may_control;
  document.body.classList.toggle("may-control", mayControl);
  document.getElementById("who").textContent = me.user + " (" + me.role + ")";
  await refresh();
  setInterval(refresh, 2000);
}

start();
