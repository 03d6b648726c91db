// The review console's keyboard shortcuts, media reveal and help overlay. Plain JavaScript, no
// build step; it only clicks the page's own forms and links, so every action also works without it.
(function () {
  "use strict";
  var blockMode = false;
  var busy = false;  // one action per page: a second key press must not post again

  function item() { return document.getElementById("item"); }
  function help() { return document.getElementById("help"); }
  function submit(id) {
    var form = document.getElementById(id);
    if (form && !busy) { busy = true; form.requestSubmit ? form.requestSubmit() : form.submit(); }
  }
  function setBlockMode(on) {
    blockMode = on;
    var form = document.getElementById("f-block");
    if (form) { form.classList.toggle("armed", on); }
  }
  function go(attr) {
    var el = item();
    var href = el && el.dataset[attr];
    if (href) { window.location.assign(href); }
  }
  function reveal(root) {
    (root || document).querySelectorAll("[data-media].blurred").forEach(function (m) { m.classList.remove("blurred"); });
  }

  // The cluster page: the bulk buttons stay disabled until every sampled member was viewed.
  function viewSample(tile) {
    tile.classList.remove("unviewed");
    var form = document.getElementById("f-bulk");
    var viewed = Array.prototype.map.call(document.querySelectorAll("li.sample:not(.unviewed)"),
                                          function (li) { return li.dataset.event; });
    document.getElementById("viewed").value = viewed.join(",");
    var left = Number(form.dataset.sampleCount) - viewed.length;
    document.getElementById("sample-status").textContent =
      left > 0 ? left + " sample item" + (left === 1 ? "" : "s") + " still to view." : "Sample viewed: the bulk actions are enabled.";
    form.querySelectorAll("[data-bulk]").forEach(function (b) { b.disabled = left > 0; });
  }

  // A PDF's first page that the server could not render (422): say so instead of a broken image.
  function unrendered(img) {
    var placeholder = img.parentNode.querySelector("[data-pdf-placeholder]");
    img.hidden = true;
    if (placeholder) { placeholder.hidden = false; }
    img.closest("[data-media]").classList.add("failed");
  }
  document.addEventListener("error", function (event) {
    if (event.target.matches && event.target.matches("img[data-pdf-page]")) { unrendered(event.target); }
  }, true);
  document.querySelectorAll("img[data-pdf-page]").forEach(function (img) {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) { unrendered(img); }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-reveal], [data-help-toggle], [data-view-sample]");
    if (!target) { return; }
    if (target.hasAttribute("data-view-sample")) { viewSample(target.closest("li.sample")); target.remove(); return; }
    if (target.hasAttribute("data-reveal")) { target.closest("[data-media]").classList.toggle("blurred"); }
    if (target.hasAttribute("data-help-toggle")) { help().hidden = !help().hidden; }
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.metaKey || busy) { return; }
    var typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (typing) {
      if (event.key === "Escape") { event.target.blur(); }
      if (event.key === "Enter" && event.ctrlKey && event.target.id === "note") { submit("f-escalate"); }
      return;
    }
    if (event.ctrlKey) { return; }
    var el = item();
    var canAct = el && el.dataset.actions === "on";
    var key = event.key;
    if (key === "?") { if (help()) { help().hidden = !help().hidden; } event.preventDefault(); return; }
    if (key === "Escape") { setBlockMode(false); if (help()) { help().hidden = true; } return; }
    if (!el) { return; }
    if (blockMode) {
      var index = key === "Enter" || key === "b" ? 1 : parseInt(key, 10);
      var button = document.querySelector('#f-block [data-label-index="' + index + '"]');
      if (button && !busy) { event.preventDefault(); setBlockMode(false); busy = true; button.click(); }
      return;
    }
    if (key === "j") { go("next"); }
    else if (key === "k") { go("prev"); }
    else if (key === "r") { reveal(); }
    else if (!canAct) { return; }
    else if (key === "a") { submit("f-allow"); }
    else if (key === "b") { setBlockMode(true); }
    else if (key === "s") { submit("f-skip"); }
    else if (key === "e") { event.preventDefault(); document.getElementById("note").focus(); }
    else { return; }
    event.preventDefault();
  });
})();
