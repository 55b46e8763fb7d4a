// The alert page's interactive light curve: fetch the Bokeh json_item and embed it with the
// BokehJS calserv serves itself, then wire what Bokeh cannot do without run-time compiled code
// (which the page's CSP forbids): the HTML legend's buttons show and hide points, a tapped point's
// details (with a link to its job) appear under the plot, the MJD axis above follows the UTC axis
// below, the "now" line is put at the reader's now, and on a touch screen the drag tool is off so
// a vertical swipe scrolls the page. Without JavaScript the <noscript> PNG shows; if the plot
// cannot be built, the PNG is put in its place.
(function () {
  "use strict";
  const box = document.getElementById("lightcurve-interactive");
  if (!box) return;
  const legend = document.getElementById("lightcurve-legend");
  const detail = document.getElementById("point-detail");
  const MJD_UNIX = 40587, DAY_MS = 86400000;

  function fallback() {
    const img = document.createElement("img");
    img.className = "plot";
    img.src = box.dataset.png;
    img.alt = box.dataset.alt;
    box.replaceWith(img);
    if (legend) legend.hidden = true;
  }
  function tagOf(renderer) {
    const tag = renderer.tags && renderer.tags[0];
    if (!tag) return null;
    return function (key) { return tag instanceof Map ? tag.get(key) : tag[key]; };
  }
  function named(fig, name) {
    return fig.center.concat(fig.renderers).find(function (m) { return m.name === name; });
  }

  function wireLegend(fig) {
    if (!legend) return;
    const buttons = Array.from(legend.querySelectorAll("button[data-kind]"));
    function on(kind, value) {
      const b = buttons.find(function (x) {
        return x.dataset.kind === kind && (value === undefined || x.dataset.value === value);
      });
      return !b || b.getAttribute("aria-pressed") === "true";
    }
    function apply() {
      fig.renderers.forEach(function (r) {
        const tag = tagOf(r);
        if (!tag) return;
        r.visible = on("filter", tag("filter")) && on("observatory", tag("observatory")) &&
          (!tag("limit") || on("limit")) && (!tag("flagged") || on("flagged")) &&
          (!tag("outlier") || on("outlier"));
      });
    }
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        b.setAttribute("aria-pressed", b.getAttribute("aria-pressed") === "true" ? "false" : "true");
        apply();
      });
    });
    legend.hidden = false;
  }

  function showPoint(data, i) {
    detail.replaceChildren();
    const dl = document.createElement("dl");
    [["UTC", data.date_obs[i]], ["MJD", data.mjd[i].toFixed(5)], ["magnitude", data.mag_text[i]],
     ["filter", data.filter[i] + " (" + data.survey[i] + ")"], ["observatory", data.observatory[i]],
     ["check", data.check_text[i]], ["flags", data.flags_text[i]]].forEach(function (pair) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = pair[0];
      dd.textContent = pair[1];
      dl.append(dt, dd);
    });
    const link = document.createElement("a");
    link.href = data.job_url[i];
    link.textContent = "Open job " + data.job_id[i];
    link.id = "point-job-link";
    detail.append(dl, link);
    detail.hidden = false;
  }

  function wireTap(fig) {
    if (!detail) return;
    const tap = fig.toolbar.tools.find(function (t) { return t.type === "TapTool"; });
    if (!tap) return;
    tap.renderers.forEach(function (r) {
      const src = r.data_source, sel = src.selected;
      sel.connect(sel.properties.indices.change, function () {
        if (sel.indices.length) showPoint(src.data, sel.indices[0]);
      });
    });
  }

  function wireAxes(fig) {
    const mjd = fig.extra_x_ranges.get ? fig.extra_x_ranges.get("mjd") : fig.extra_x_ranges.mjd;
    const x = fig.x_range;
    function follow() {
      mjd.setv({ start: x.start / DAY_MS + MJD_UNIX, end: x.end / DAY_MS + MJD_UNIX });
    }
    x.connect(x.change, follow);
    const now = Date.now(), span = named(fig, "now"), label = named(fig, "now_label");
    if (span) span.location = now;
    if (label) label.x = now;
  }

  function touchFriendly(fig) {
    if (!window.matchMedia("(pointer: coarse)").matches) return;
    fig.toolbar.tools.forEach(function (t) {
      if (t.type === "PanTool" || t.type === "WheelZoomTool") t.active = false;
    });
  }

  if (!window.Bokeh) { fallback(); return; }
  fetch(box.dataset.src, { credentials: "same-origin" })  // as preloaded by the page's <head>
    .then(function (resp) {
      if (!resp.ok) throw new Error("light curve: HTTP " + resp.status);
      return resp.json();
    })
    .then(function (item) {
      box.hidden = false;
      return window.Bokeh.embed.embed_item(item, box.id);
    })
    .then(function () {
      const docs = window.Bokeh.documents;
      const fig = docs[docs.length - 1].roots()[0];
      touchFriendly(fig);
      wireAxes(fig);
      wireLegend(fig);
      wireTap(fig);
      box.dataset.ready = "1";
      performance.mark("lightcurve-ready");  // when the plot answers the reader
    })
    .catch(function (err) { console.error(err); fallback(); });
})();
