// Judge console: the live score of the rubric form and keyboard shortcuts. No framework, no CDN.
// The score comes from the server's rubric engine (POST the form to its data-preview-url), so the
// page never re-implements the arithmetic; saving the review recomputes it the same way.
(function () {
  "use strict";
  var RERUN_POLL_MS = 2000;

  function showPreview(form, preview) {
    form.querySelectorAll("fieldset[data-factor]").forEach(function (fieldset) {
      fieldset.hidden = preview.applicable.indexOf(fieldset.dataset.factor) === -1;
    });
    document.getElementById("live-score").textContent = preview.score === null ? "—" : preview.score;
    document.getElementById("live-formula").textContent = preview.formula;
    document.getElementById("live-flags").textContent = preview.flags.join("; ");
  }

  function initRubric() {
    var form = document.getElementById("rubric-form");
    if (!form || !form.dataset.previewUrl) { return; }
    var pending = null, sent = 0;
    var update = function () {
      var mine = ++sent;  // only the answer to the latest change is shown
      window.clearTimeout(pending);
      pending = window.setTimeout(function () {
        fetch(form.dataset.previewUrl, {method: "POST", body: new FormData(form), credentials: "same-origin",
                                        headers: {"X-Requested-With": "fetch"}})
          .then(function (response) { return response.ok ? response.json() : null; })
          .then(function (preview) { if (preview && mine === sent) { showPreview(form, preview); } })
          .catch(function () { document.getElementById("live-formula").textContent = "preview unavailable"; });
      }, 120);
    };
    form.addEventListener("change", update);
    form.addEventListener("input", update);
    update();
  }

  function typing(event) {
    var t = event.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  function initKeys() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("#judge-queue tr[data-href]"));
    var current = -1;
    function select(i) {
      if (!rows.length) { return; }
      current = Math.max(0, Math.min(rows.length - 1, i));
      rows.forEach(function (r, k) { r.classList.toggle("current", k === current); });
      rows[current].querySelector("a").focus();
    }
    var focusFirst = function (selector) {
      var node = document.querySelector(selector);
      if (node) { node.scrollIntoView({ block: "start" }); node.focus(); }
    };
    document.addEventListener("keydown", function (event) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
      switch (event.key) {
        case "j": select(current + 1); break;
        case "k": select(current - 1); break;
        case "Enter": if (current >= 0) { window.location = rows[current].dataset.href; } else { return; } break;
        case "r": focusFirst("#harm_type"); break;
        case "d": focusFirst("#decision-reason"); break;
        case "c": focusFirst("#comment-body"); break;
        case "g": window.location = "/judge/"; break;
        default: return;
      }
      event.preventDefault();
    });
  }

  // A refused form answers with the page itself (no #anchor to land on): bring the first
  // refusal into view and put the cursor in its field.
  function landOnRefusal() {
    var error = document.querySelector(".judge-grid .field-error, .judge-grid .messages .error");
    if (!error || window.location.hash) { return; }
    error.scrollIntoView({ block: "center" });
    var field = document.querySelector("[aria-describedby='" + error.id + "']");
    if (field) { field.focus({ preventScroll: true }); }
  }

  // While a re-run is in progress, ask rerun.json every few seconds and swap its block in.
  function pollRerun() {
    var section = document.getElementById("rerun");
    var block = document.getElementById("rerun-result");
    if (!section || !block || !block.dataset.pending || !section.dataset.statusUrl) { return; }
    window.setTimeout(function () {
      fetch(section.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (status) {
          if (status) {
            var holder = document.createElement("div");
            holder.innerHTML = status.html;
            var fresh = holder.querySelector("#rerun-result");
            if (fresh) { block.replaceWith(fresh); }
          }
          pollRerun();
        })
        .catch(pollRerun);  // a dropped connection is retried on the next turn
    }, RERUN_POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () { initRubric(); initKeys(); landOnRefusal(); pollRerun(); });
})();
