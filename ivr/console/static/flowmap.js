// The flow heat map: zoom (buttons, Ctrl + wheel) and search as you type (by node id or prompt
// text in any language, read from each node's data-find). Everything works without it too:
// the form searches on the server and a node's details open by :target.
"use strict";

(function () {
  const svg = document.getElementById("map");
  if (!svg) return;
  const baseW = Number(svg.dataset.width), baseH = Number(svg.dataset.height);
  let scale = 1;

  function zoom(to) {
    scale = Math.min(4, Math.max(0.2, to));
    svg.setAttribute("width", String(Math.round(baseW * scale)));
    svg.setAttribute("height", String(Math.round(baseH * scale)));
    svg.dataset.scale = scale.toFixed(2);
  }
  function fit() {
    const wrap = document.getElementById("map-wrap");
    zoom(Math.min(wrap.clientWidth / baseW, wrap.clientHeight / baseH, 1));
  }
  document.getElementById("zoom-in").addEventListener("click", () => zoom(scale * 1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(scale / 1.25));
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("map-wrap").addEventListener("wheel", (e) => {
    if (!e.ctrlKey) return;
    e.preventDefault();
    zoom(scale * (e.deltaY < 0 ? 1.1 : 1 / 1.1));
  }, {passive: false});

  const find = document.getElementById("find");
  const nodes = Array.from(svg.querySelectorAll("g.heat"));
  function search() {
    const needle = find.value.trim().toLowerCase().split(/\s+/).join(" ");
    svg.classList.toggle("searching", needle.length > 0);
    const hits = [];
    for (const g of nodes) {
      const hit = needle.length > 0 && g.dataset.find.includes(needle);
      g.classList.toggle("found", hit);
      if (hit) hits.push(g);
    }
    return hits;
  }
  find.addEventListener("input", search);
  find.addEventListener("keydown", (e) => {
    if (e.key !== "Enter") return;
    e.preventDefault();
    const hits = search();
    if (!hits.length) return;
    hits[0].scrollIntoView({block: "center", inline: "center"});
    const link = hits[0].closest("a");
    if (link && link.getAttribute("href").startsWith("#")) location.hash = link.getAttribute("href");
  });
  if (find.value) search();
})();
