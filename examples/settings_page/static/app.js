// The settings page's one script, served as a file (the Content-Security-Policy allows no
// inline script). The page works without it; with it:
// - after a failed submit, focus goes to the error summary (or, after a save over a newer
//   version, to the two versions side by side); after an action, to its notice (a live
//   region, but one already there when the page loads is not announced: focus reads it);
// - on Add/Edit, the language link re-renders the form in the other language with what
//   was typed (it posts the form, nothing is saved);
// - an open delivery log refreshes every two seconds.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const summary = ["conflict", "error-summary", "notice", "url-test"]
    .map((id) => document.getElementById(id))
    .find((element) => element);
  if (summary) summary.focus();

  const langLink = document.getElementById("lang-switch");
  const langSubmit = document.getElementById("lang-submit");
  if (langLink && langSubmit && langSubmit.form) {
    langLink.addEventListener("click", (event) => {
      event.preventDefault();
      langSubmit.form.requestSubmit(langSubmit);
    });
  }

  const log = document.getElementById("log");
  if (log && log.dataset.src) {
    setInterval(async () => {
      const response = await fetch(log.dataset.src);
      if (response.ok) {
        const html = await response.text();
        if (html !== log.innerHTML) log.innerHTML = html;
      }
    }, 2000);
  }
});
