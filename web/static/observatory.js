// The observatory page's history plots: fetch the Bokeh json_item and embed it with the BokehJS
// calserv serves itself. Without JavaScript, or if the plots cannot be built, the frame table
// below carries the same numbers.
(function () {
  "use strict";
  const box = document.getElementById("observatory-history");
  if (!box || !window.Bokeh) return;
  fetch(box.dataset.src, { headers: { Accept: "application/json" } })
    .then(function (resp) {
      if (!resp.ok) throw new Error("history: HTTP " + resp.status);
      return resp.json();
    })
    .then(function (item) {
      box.hidden = false;
      return window.Bokeh.embed.embed_item(item, box.id);
    })
    .then(function () { box.dataset.ready = "1"; })
    .catch(function (err) { console.error(err); });
})();
