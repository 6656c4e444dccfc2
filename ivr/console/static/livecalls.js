// The wallboard's live calls, each linking to its timeline and its node on the flow heat map.
// It listens to the snapshots wallboard.js receives (the "snapshot" event on document).
"use strict";

function liveCell(row, text, href) {
  const td = row.insertCell();
  if (href) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;  // text only: nothing from the server is parsed as HTML
    td.append(a);
  } else {
    td.textContent = text;
  }
}

document.addEventListener("snapshot", (e) => {
  const body = document.querySelector("#live tbody");
  if (!body) return;
  body.replaceChildren();
  const now = Date.now() / 1000;
  for (const c of e.detail.live || []) {
    const row = body.insertRow();
    row.dataset.call = c.call_id;
    const seconds = Math.max(0, Math.floor(now - c.started_at));
    liveCell(row, (c.caller || "?") + (c.qa ? " (QA)" : ""), "/calls/" + encodeURIComponent(c.call_id));
    liveCell(row, c.called || "");
    const flow = c.node_flow || c.flow || "";
    liveCell(row, flow + (c.node ? " · " + c.node : ""),
             flow ? "/flows/" + encodeURIComponent(flow) + (c.node ? "#n-" + encodeURIComponent(c.node) : "") : "");
    liveCell(row, Math.floor(seconds / 60) + "m" + String(seconds % 60).padStart(2, "0") + "s");
  }
  if (!body.rows.length) {
    const td = body.insertRow().insertCell();
    td.textContent = "none";
    td.colSpan = 4;
  }
});
