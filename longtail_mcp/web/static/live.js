// Live updates for the web view, an enhancement: every page works without this script.
// The inbox re-fetches its lists when an escalation it may show changes; an escalation's page says
// when someone else changed it (it never replaces a form being filled in).
(function () {
  "use strict";
  var TYPES = ["created", "claimed", "released", "resolved", "expired", "cancelled", "escalated"];

  function listen(url, onEvent) {
    if (!window.EventSource || !url) { return; }
    var source = new EventSource(url);
    // The session ended (signed out elsewhere, key revoked): stop, and reload to the sign-in page.
    source.addEventListener("ended", function () { source.close(); window.location.reload(); });
    TYPES.forEach(function (type) {
      source.addEventListener("escalation." + type, function (message) {
        var event = {};
        try { event = JSON.parse(message.data); } catch (e) { /* keep the empty event */ }
        onEvent(event);
      });
    });
  }

  function inbox(root) {
    var timer = null;
    var refresh = function () {
      timer = null;
      fetch(root.dataset.liveList, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }  // the session ended
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          // Keep the user's place: do not swap while they are using a control inside the lists.
          if (html !== null && !root.contains(document.activeElement)) { root.innerHTML = html; }
        })
        .catch(function () { /* offline for a moment: the next event tries again */ });
    };
    listen(root.dataset.liveEvents, function () {
      if (timer === null) { timer = window.setTimeout(refresh, 250); }  // a burst of events, one fetch
    });
  }

  function escalation(notice) {
    listen(notice.dataset.liveEvents, function (event) {
      if (event.id === notice.dataset.liveId) { notice.hidden = false; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var lists = document.querySelector("[data-live-list]");
    if (lists) { inbox(lists); }
    var notice = document.querySelector("[data-live-id]");
    if (notice) { escalation(notice); }
  });
})();
