// Live updates of a run's page, an enhancement: the page works without this script.
// While the run is live, an event about it (run.*, step.*, escalation.*) re-fetches the timeline part and
// swaps it in, keeping open details open and focus where it was; the stream closes when the run ends.
(function () {
  "use strict";
  var TYPES = ["run.started", "run.waiting", "run.completed", "run.failed", "run.cancelled", "step.completed",
               "escalation.created", "escalation.claimed", "escalation.released", "escalation.resolved",
               "escalation.expired", "escalation.cancelled", "escalation.escalated"];
  var ENDED = ["run.completed", "run.failed", "run.cancelled"];

  function openDetails(root) {
    return Array.prototype.map.call(root.querySelectorAll("details[open][id]"), function (d) { return d.id; });
  }

  function focusedId(root) {
    var active = document.activeElement;
    if (!active || !root.contains(active)) { return null; }
    var holder = active.closest("[id]");
    return holder && root.contains(holder) ? holder.id : null;
  }

  function follow(root, note) {
    var timer = null;
    var source = new EventSource(root.dataset.runEvents);
    var refresh = function () {
      timer = null;
      fetch(root.dataset.runTimeline, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }  // the session ended
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          var open = openDetails(root);
          var focus = focusedId(root);
          root.innerHTML = html;
          open.forEach(function (id) {
            var details = document.getElementById(id);
            if (details) { details.open = true; }
          });
          var target = focus && document.getElementById(focus);
          if (target) {
            var summary = target.tagName === "DETAILS" ? target.querySelector("summary") : null;
            (summary || target).focus();
          }
          var status = root.querySelector(".run-status");
          if (note && status) { note.textContent = "Updated: the run is " + status.textContent.trim() + "."; }
        })
        .catch(function () { /* offline for a moment: the next event tries again */ });
    };
    var soon = function () {
      if (timer === null) { timer = window.setTimeout(refresh, 250); }  // a burst of events, one fetch
    };
    // Subscribed (again, after a reconnection): fetch once for what changed while no one listened.
    source.addEventListener("ready", soon);
    // The session ended (signed out elsewhere, key revoked): stop, and reload to the sign-in page.
    source.addEventListener("ended", function () { source.close(); window.location.reload(); });
    TYPES.forEach(function (type) {
      source.addEventListener(type, function () {
        if (ENDED.indexOf(type) !== -1) { source.close(); }  // the last change: fetch it, then stop listening
        soon();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-run-events]");
    if (root && window.EventSource && window.fetch) { follow(root, document.getElementById("run-live-note")); }
  });
})();
