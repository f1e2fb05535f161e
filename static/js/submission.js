// Live state of a submission: poll its small JSON every two seconds while it is active,
// update the live line in place, and re-fetch the whole state block when the state changes.
(function () {
  "use strict";
  const INTERVAL_MS = 2000;

  // The same wording as the `wait` template filter.
  function wait(seconds) {
    if (seconds < 60) return Math.max(1, Math.round(seconds)) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function liveText(s) {
    if (s.queue_position) {
      return " — position " + s.queue_position + " in the queue" +
        (s.eta_s === null ? "" : ", about " + wait(s.eta_s) + " to start");
    }
    if (s.elapsed_s !== null) return " — running for " + Math.round(s.elapsed_s) + " s";
    if (s.progress) return " — measured " + s.progress.done + " of " + s.progress.total + " " + s.progress_unit
      + (s.measure_eta_s !== null && s.measure_eta_s !== undefined ? ", about " + wait(s.measure_eta_s) + " left" : "");
    if (s.state === "measuring") return " — waiting for a worker to start measuring";
    return "";
  }

  async function refreshBlock(box) {
    const r = await fetch(box.dataset.partial, {credentials: "same-origin", cache: "no-store"});
    if (!r.ok) return box;
    const holder = document.createElement("div");
    holder.innerHTML = await r.text();
    const fresh = holder.querySelector("#submission-state");
    if (!fresh) return box;
    box.replaceWith(fresh);
    return fresh;
  }

  async function tick() {
    let box = document.getElementById("submission-state");
    if (!box || !box.dataset.poll) return;  // finished: nothing left to watch
    try {
      const r = await fetch(box.dataset.poll, {credentials: "same-origin", cache: "no-store"});
      if (r.ok) {
        const s = await r.json();
        if (s.state !== box.dataset.state || (s.run && !box.querySelector("#run"))) {
          box = await refreshBlock(box);
        } else {
          const live = document.getElementById("live");
          if (live) live.textContent = liveText(s);
          const bar = document.getElementById("progress");
          if (bar && s.progress) { bar.max = s.progress.total; bar.value = s.progress.done; }
        }
      }
    } catch (e) {
      // A dropped connection is retried on the next tick.
    }
    setTimeout(tick, INTERVAL_MS);
  }

  setTimeout(tick, INTERVAL_MS);
})();
