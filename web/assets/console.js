// The agenda: shows, live, which citizens are waiting in their video room. It asks the server
// every 4 seconds and announces each new arrival once to screen readers.
(function () {
  "use strict";
  var badges = document.querySelectorAll("[data-waiting]");
  if (!badges.length) return;
  var announce = document.getElementById("waiting-announce");
  var known = {};
  function refresh() {
    fetch("/ufficio/attesa", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var now = {};
        data.waiting.forEach(function (id) { now[id] = true; });
        badges.forEach(function (b) {
          var id = b.getAttribute("data-waiting");
          b.hidden = !now[id];
          var row = b.closest("tr");
          if (row) row.classList.toggle("citizen-waiting", !!now[id]);
        });
        Object.keys(now).forEach(function (id) {
          if (!known[id] && announce) {
            var row = document.querySelector('tr[data-id="' + id + '"] a');
            var who = row ? row.textContent : "";
            announce.textContent = (document.documentElement.lang === "en" ? "Waiting in the room: " : "In attesa nella stanza: ") + who;
          }
        });
        known = now;
      })
      .catch(function () {});
  }
  refresh();
  setInterval(refresh, 4000);
})();
