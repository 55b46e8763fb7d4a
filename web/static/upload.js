// The upload form's date field takes an MJD, a JD or an ISO 8601 date (UTC unless it names an
// offset); show the MJD that will be sent, and send that MJD. The server reads the same three
// forms (web/dates.py), so the form works without JavaScript too.
(function () {
  "use strict";
  const field = document.getElementById("MJD");
  const preview = document.getElementById("mjd-preview");
  if (!field || !preview) return;
  const JD_MINUS_MJD = 2400000.5;
  const MJD_EPOCH_MS = Date.UTC(1858, 10, 17);
  function toMjd(text) {
    text = text.trim();
    if (!text) return null;
    if (/^[+-]?\d+(\.\d*)?$/.test(text)) {
      const n = parseFloat(text);
      return n >= JD_MINUS_MJD ? n - JD_MINUS_MJD : n;
    }
    if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return NaN;
    const hasZone = /(Z|[+-]\d{2}:?\d{2})$/.test(text);
    const iso = text.length === 10 ? text + "T00:00:00Z" : (hasZone ? text : text + "Z");
    const ms = Date.parse(iso.replace(" ", "T"));
    return isNaN(ms) ? NaN : (ms - MJD_EPOCH_MS) / 86400000;
  }
  function isoOf(mjd) {
    return new Date(MJD_EPOCH_MS + mjd * 86400000).toISOString();
  }
  function show() {
    const mjd = toMjd(field.value);
    if (mjd === null) preview.textContent = "";
    else if (isNaN(mjd)) preview.textContent = "Not a date: give an MJD, a JD or an ISO 8601 date.";
    else preview.textContent = "Will send MJD " + mjd.toFixed(6) + " (" + isoOf(mjd) + ")";
  }
  field.addEventListener("input", show);
  field.form.addEventListener("submit", function () {
    const mjd = toMjd(field.value);
    if (mjd !== null && !isNaN(mjd)) field.value = mjd.toFixed(8);
  });
  show();
})();

// A file larger than the server takes is refused here, before minutes of sending it: the
// message says what is accepted, and the form keeps everything typed into it.
(function () {
  "use strict";
  const input = document.getElementById("sexCat");
  const message = document.getElementById("file-error");
  if (!input || !message) return;
  function check() {
    const max = Number(input.dataset.maxBytes);
    const file = input.files && input.files[0];
    const tooLarge = Boolean(file && max && file.size > max);
    const text = tooLarge
      ? file.name + " is " + (file.size / 1e6).toFixed(1) + " MB; calserv takes catalogues, " +
        "tables and FITS images up to " + (max / 1e6).toFixed(0) + " MB. Compress an image " +
        "(.fits.gz or .fz) or choose its SExtractor catalogue."
      : "";
    input.setCustomValidity(text);
    message.textContent = text;
    message.hidden = !tooLarge;
    return !tooLarge;
  }
  input.addEventListener("change", check);
  input.form.addEventListener("submit", function (event) {
    if (!check()) {
      event.preventDefault();
      input.focus();
    }
  });
})();
