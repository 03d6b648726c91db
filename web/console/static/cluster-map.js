// The clusters page's map: hovering or focusing a point shows its upload (a thumbnail through the
// console's media route, or the text excerpt) in a tooltip. Upload text only ever goes in through
// textContent, never as markup; clicking is the point's own link, so it works without this file.
(function () {
  "use strict";
  var map = document.getElementById("cluster-map");
  var tip = document.getElementById("map-tip");
  if (!map || !tip) { return; }
  var img = tip.querySelector("img"), head = tip.querySelector(".tip-head"), body = tip.querySelector(".tip-text");
  var shown = null;

  function place(point, event) {
    var box = map.parentNode.getBoundingClientRect();
    var at = event && event.clientX !== undefined ? { x: event.clientX, y: event.clientY } : (function () {
      var r = point.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    })();
    var x = at.x - box.left + 12, y = at.y - box.top + 12;
    var width = tip.offsetWidth || 240, height = tip.offsetHeight || 120;
    if (x + width > box.width) { x = Math.max(0, at.x - box.left - width - 12); }
    if (y + height > box.height) { y = Math.max(0, at.y - box.top - height - 12); }
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function show(point, event) {
    var data = point.dataset;
    if (shown !== point) {
      shown = point;
      head.textContent = data.asset + " · " + (data.cluster === "noise" ? "noise" : "cluster " + data.cluster) +
        (data.action ? " · " + data.action + (data.label ? " " + data.label : "") : "");
      body.textContent = data.excerpt || (data.thumb ? "" : "(no text stored)");
      body.hidden = !body.textContent;
      if (data.thumb) { img.src = data.thumb; img.alt = "thumbnail of " + data.asset; img.hidden = false; }
      else { img.removeAttribute("src"); img.hidden = true; }
      tip.hidden = false;
    }
    place(point, event);
  }

  function hide() { shown = null; tip.hidden = true; }

  map.addEventListener("mouseover", function (event) {
    var point = event.target.closest("a.pt");
    if (point) { show(point, event); }
  });
  map.addEventListener("mousemove", function (event) {
    var point = event.target.closest("a.pt");
    if (point && point === shown) { place(point, event); }
  });
  map.addEventListener("mouseout", function (event) {
    var point = event.target.closest("a.pt");
    if (point && !point.contains(event.relatedTarget)) { hide(); }
  });
  map.addEventListener("focusin", function (event) {
    var point = event.target.closest("a.pt");
    if (point) { show(point); }
  });
  map.addEventListener("focusout", hide);
  document.addEventListener("keydown", function (event) { if (event.key === "Escape") { hide(); } });
})();
