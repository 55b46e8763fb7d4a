// The job page of a queued or running job: poll its JSON, announce the new status through the
// aria-live region, and load the full page once the calibration has ended (no meta refresh).
(function () {
  "use strict";
  const box = document.getElementById("job-status");
  if (!box) return;
  const status = document.getElementById("status");
  let delay = 1000;
  function poll() {
    fetch(box.dataset.poll, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (resp) { return resp.json(); })
      .then(function (job) {
        if (job.status !== box.dataset.status) {
          box.dataset.status = job.status;
          status.textContent = job.status;
        }
        if (job.status === "succeeded" || job.status === "failed") {
          window.location.reload();
        } else {
          delay = Math.min(delay * 1.5, 5000);
          setTimeout(poll, delay);
        }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, delay);
})();
