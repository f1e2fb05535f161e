// Judge console: the live score of the rubric form and keyboard shortcuts. No framework, no CDN.
// The server recomputes every score with the engine (grading/rubric/engine.py); this is a preview
// with the same rule: base × product of multipliers, a factor with parts takes their mean, the
// gated factor is capped when the measurement substantiates nothing, rounded to 2 decimals last.
(function () {
  "use strict";

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function fmt(x, places) {
    var text = x.toFixed(places).replace(/0+$/, "");
    return text.endsWith(".") ? text + "0" : text;
  }

  function liveScore(form, rubric, gate) {
    var harmSelect = form.querySelector("#harm_type");
    var harm = rubric.harms.find(function (h) { return h.id === harmSelect.value; });
    var kind = harm.intentional ? "intentional" : "unintentional";
    var factors = [], missing = [], flags = [];
    rubric.factors.forEach(function (factor) {
      var applies = (factor.applies_to || "any");
      var fieldset = form.querySelector('fieldset[data-factor="' + factor.id + '"]');
      var active = applies === "any" || applies === kind;
      if (fieldset) { fieldset.hidden = !active; }
      if (!active) { return; }
      var parts = factor.parts || [{ id: factor.id, levels: factor.levels, label: factor.label }];
      var values = parts.map(function (part) {
        var select = form.querySelector('select[data-part="' + part.id + '"]');
        var level = part.levels.find(function (lv) { return select && lv.id === select.value; });
        if (!level) { missing.push(part.label); return null; }
        return level.value;
      });
      if (values.indexOf(null) !== -1) { return; }
      var value = (factor.combine === "product")
        ? values.reduce(function (a, b) { return a * b; }, 1)
        : values.reduce(function (a, b) { return a + b; }, 0) / values.length;
      var m = rubric.measurement;
      if (gate && !gate.substantiated && factor.id === m.gated_factor && value > m.cap) {
        flags.push(factor.label.toLowerCase() + " capped at ×" + fmt(m.cap, 3));
        value = m.cap;
      }
      factors.push(value);
    });
    var out = document.getElementById("live-score");
    var formula = document.getElementById("live-formula");
    var flagNode = document.getElementById("live-flags");
    if (missing.length) {
      out.textContent = "—";
      formula.textContent = "rate: " + missing.join(", ");
      flagNode.textContent = "";
      return;
    }
    var product = factors.reduce(function (a, b) { return a * b; }, 1);
    // The epsilon keeps 17.825-style halves from falling to the float just below them.
    var score = Math.round((harm.base * product + 1e-9) * 100) / 100;
    out.textContent = score.toFixed(2);
    formula.textContent = harm.base + " × " + factors.map(function (v) { return fmt(v, 3); }).join(" × ") +
      " = " + score.toFixed(2) + "  (" + harm.base + " × " + fmt(product, 3) + ")";
    if (gate && !gate.substantiated) { flags.unshift("not substantiated"); }
    flagNode.textContent = flags.join("; ");
  }

  function initRubric() {
    var form = document.getElementById("rubric-form");
    var rubric = readJSON("rubric-data");
    if (!form || !rubric) { return; }
    var gate = readJSON("gate-data");
    var update = function () { liveScore(form, rubric, gate); };
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

  document.addEventListener("DOMContentLoaded", function () { initRubric(); initKeys(); });
})();
