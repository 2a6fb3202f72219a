// ARO dashboard: live updates of list pages, without reloading the page.
//
// A page with a live region (`#live-region`, rendered by src/dashboard/live.rs) opens
// one server-sent-event stream, /dashboard/live, starting from the marks the page was
// rendered with. When the stream says a topic the region follows has changed
// (`data-live-topics`), the region's fragment (`data-live-src`) is fetched again and
// put in place of its content. Refreshes never overlap: changes that arrive during one
// are folded into a single follow-up. Served as a file: the CSP allows no inline script.
(function () {
  "use strict";

  var region = document.getElementById("live-region");
  var status = document.getElementById("live-status");
  if (!region || !window.EventSource || !window.fetch) {
    return;
  }

  var topics = (region.getAttribute("data-live-topics") || "events").split(/\s+/);
  var running = false;
  var again = false;

  function say(text, state) {
    document.documentElement.setAttribute("data-live", state);
    if (status) {
      status.textContent = text;
    }
  }

  function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    fetch(region.getAttribute("data-live-src"), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      cache: "no-store"
    })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        region.innerHTML = html;
        var count = Number(region.getAttribute("data-live-updates") || "0") + 1;
        region.setAttribute("data-live-updates", String(count));
        say("Live updates: on · updated " + new Date().toLocaleTimeString(), "connected");
      })
      .catch(function () {
        say("Live updates: could not refresh; reload the page", "error");
      })
      .then(function () {
        running = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  var query = new URLSearchParams();
  query.set("after", region.getAttribute("data-live-after") || "0");
  query.set("esc", region.getAttribute("data-live-esc") || "");
  var source = new EventSource("/dashboard/live?" + query.toString());

  source.addEventListener("open", function () {
    say("Live updates: on", "connected");
  });
  source.addEventListener("error", function () {
    say("Live updates: reconnecting…", "reconnecting");
  });
  source.addEventListener("change", function (event) {
    var changed = [];
    try {
      changed = JSON.parse(event.data).topics || [];
    } catch (e) {
      changed = topics;
    }
    for (var i = 0; i < changed.length; i += 1) {
      if (topics.indexOf(changed[i]) !== -1) {
        refresh();
        return;
      }
    }
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
