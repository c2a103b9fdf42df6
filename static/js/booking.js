// The booking form's price, live: whenever the times change, ask the server for the
// price box of those times (the same fragment the page renders without script) and
// carry its signature, so "Confirm the booking" books exactly the price on screen.
(function () {
  "use strict";
  document.querySelectorAll("form.booking-form").forEach(function (form) {
    var starts = form.querySelector("[name=starts_at]");
    var ends = form.querySelector("[name=ends_at]");
    var quoted = form.querySelector("[name=quoted]");
    var button = form.querySelector("button[type=submit]");
    if (!starts || !ends || !quoted || !button) return;
    var asked = 0;

    function refresh() {
      if (!starts.value || !ends.value) return;
      var mine = ++asked;
      var url = form.dataset.quoteUrl + "?" + new URLSearchParams({
        starts_at: starts.value, ends_at: ends.value }).toString();
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          if (mine !== asked) return;  // a later change already asked again
          var box = form.querySelector("#quote");
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("#quote");
          if (!box || !fresh) return;
          box.replaceWith(fresh);
          quoted.value = fresh.dataset.signature || "";
          button.textContent = quoted.value ? form.dataset.confirmLabel : form.dataset.priceLabel;
        })
        .catch(function () { /* offline: the server shows the price on submit */ });
    }
    starts.addEventListener("change", refresh);
    ends.addEventListener("change", refresh);
    if (!quoted.value) refresh();
  });
})();
