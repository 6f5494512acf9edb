// Keyboard shortcuts for the review app. Loaded as a static file: the CSP forbids inline
// scripts, and nothing here builds HTML from data.
(function () {
  "use strict";

  function byId(id) { return document.getElementById(id); }

  function typing(el) {
    return !!el && (el.tagName === "TEXTAREA" || el.tagName === "INPUT" ||
      el.tagName === "SELECT" || el.isContentEditable);
  }

  // Submit a form through one of its buttons, once (a second key press is ignored).
  function submitWith(buttonId) {
    var button = byId(buttonId);
    if (!button || !button.form || button.form.dataset.sent) { return; }
    button.form.dataset.sent = "1";
    button.form.requestSubmit(button);
  }

  // Back/forward cache: a restored page may submit again.
  window.addEventListener("pageshow", function () {
    var forms = document.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) { delete forms[i].dataset.sent; }
  });

  var current = -1;  // bulk view: the row j/k moved to
  function rows() { return document.querySelectorAll("tr.row"); }
  function moveTo(index) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(all.length - 1, index));
    for (var i = 0; i < all.length; i++) { all[i].classList.toggle("current", i === current); }
    var box = all[current].querySelector("input.pick");
    if (box) { box.focus({ preventScroll: false }); }
  }

  function anyPicked() { return document.querySelectorAll("input.pick:checked").length > 0; }

  function onKey(ev) {
    var t = ev.target;
    var key = ev.key;
    if (ev.altKey || ev.metaKey) { return; }
    if (t && t.id === "label") {  // editing a label: Enter saves, 1-9 pick, Esc leaves
      if (key === "Enter") { ev.preventDefault(); submitWith("btn-edit"); }
      else if (/^[1-9]$/.test(key) && Number(key) <= t.options.length) {
        ev.preventDefault();
        t.selectedIndex = Number(key) - 1;
      } else if (key === "Escape") { t.blur(); }
      return;
    }
    if (t && t.id === "corrected") {  // editing a response: Ctrl+Enter saves
      if (key === "Enter" && ev.ctrlKey) { ev.preventDefault(); submitWith("btn-edit"); }
      else if (key === "Escape") { t.blur(); }
      return;
    }
    if (ev.ctrlKey) { return; }
    var inBulk = !!byId("bulk-form");
    if (typing(t) && !(inBulk && t.classList.contains("pick"))) {
      if (key === "Escape") { t.blur(); }
      return;
    }
    if (inBulk) {
      if (key === "j") { moveTo(current + 1); }
      else if (key === "k") { moveTo(current - 1); }
      else if (key === "x") {
        var all = rows();
        if (current < 0) { moveTo(0); }
        var box = all.length ? all[current].querySelector("input.pick") : null;
        if (box) { box.checked = !box.checked; }
      } else if (key === "a" && anyPicked()) { submitWith("btn-bulk-accept"); }
      else if (key === "r" && anyPicked()) { submitWith("btn-bulk-reject"); }
      else { return; }
      ev.preventDefault();
      return;
    }
    if (key === "a") { submitWith("btn-accept"); }
    else if (key === "r") { submitWith("btn-reject"); }
    else if (key === "s") { submitWith("btn-skip"); }
    else if (key === "e") {
      var editor = byId("label") || byId("corrected");
      if (editor) { editor.focus(); }
    } else if (key === "?") {
      var panel = byId("guidelines");
      if (panel) { panel.open = !panel.open; }
    } else { return; }
    ev.preventDefault();
  }

  document.addEventListener("keydown", onKey);

  document.addEventListener("DOMContentLoaded", function () {
    var all = byId("select-all");
    if (all) {
      all.addEventListener("click", function () {
        var boxes = document.querySelectorAll("input.pick");
        var check = !anyPicked() || document.querySelectorAll("input.pick:not(:checked)").length > 0;
        for (var i = 0; i < boxes.length; i++) { boxes[i].checked = check; }
      });
    }
  });
})();
