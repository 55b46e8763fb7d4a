// The alert page's interactive light curve: fetch the Bokeh json_item and embed it with the
// BokehJS calserv serves itself. Without JavaScript the <noscript> PNG shows; if the plot cannot
// be built, the PNG is put in its place.
(function () {
  "use strict";
  const box = document.getElementById("lightcurve-interactive");
  if (!box) return;
  function fallback() {
    const img = document.createElement("img");
    img.className = "plot";
    img.src = box.dataset.png;
    img.alt = box.dataset.alt;
    box.replaceWith(img);
  }
  if (!window.Bokeh) { fallback(); return; }
  fetch(box.dataset.src, { headers: { Accept: "application/json" } })
    .then(function (resp) {
      if (!resp.ok) throw new Error("light curve: HTTP " + resp.status);
      return resp.json();
    })
    .then(function (item) {
      box.hidden = false;
      return window.Bokeh.embed.embed_item(item, box.id);
    })
    .then(function () { box.dataset.ready = "1"; })
    .catch(function (err) { console.error(err); fallback(); });
})();
