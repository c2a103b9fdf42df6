// "Address or town" fields (templates/places/_place_field.html), made quicker with script:
// suggestions from GET /places as the person types, tapped to fill the field and its
// hidden point; and "I'm at the site", which asks the browser for its position (the
// browser asks the person first).  Without this file the server finds the typed text
// on submit, so every part here is an improvement, never a requirement.
(function () {
  "use strict";

  function setup(box) {
    var text = document.getElementById(box.dataset.placeText);
    var lat = document.getElementById(box.dataset.placeLat);
    var lng = document.getElementById(box.dataset.placeLng);
    var resolved = document.getElementById(box.dataset.placeResolved);
    var list = box.querySelector(".place-suggestions");
    var status = box.querySelector("[data-place-status]");
    var locate = box.querySelector("[data-locate]");
    if (!text || !lat || !lng || !resolved) return;
    text.setAttribute("autocomplete", "off");
    var asked = 0;
    var timer = null;

    function forget() {
      // Text typed after a pick is another place: the server looks it up afresh.
      if (resolved.value && resolved.value !== "device" && resolved.value !== text.value) {
        lat.value = ""; lng.value = ""; resolved.value = "";
      }
    }

    function hide() { list.hidden = true; list.textContent = ""; }

    function pick(place) {
      text.value = place.label;
      lat.value = String(place.lat); lng.value = String(place.lng);
      resolved.value = place.label;
      status.textContent = "";
      hide();
      var form = box.closest("form");
      var locality = form && form.querySelector("input[name=locality]");
      if (locality && !locality.value) locality.value = place.town;
    }

    function show(places) {
      list.textContent = "";
      places.forEach(function (place) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "button place-suggestion";
        button.setAttribute("role", "option");
        button.textContent = place.label;
        button.addEventListener("click", function () { pick(place); text.focus(); });
        item.appendChild(button);
        list.appendChild(item);
      });
      list.hidden = places.length === 0;
    }

    function ask() {
      var query = text.value.trim();
      if (query.length < 2) { hide(); return; }
      var mine = ++asked;
      fetch(box.dataset.places + "?q=" + encodeURIComponent(query),
            {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : {places: []}; })
        .then(function (data) { if (mine === asked) show(data.places || []); })
        .catch(function () { /* no suggestions: the server still finds it on submit */ });
    }

    text.addEventListener("input", function () {
      forget();
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    });
    text.addEventListener("keydown", function (event) {
      if (event.key === "Escape") hide();
    });

    if (locate && navigator.geolocation) {
      locate.hidden = false;
      locate.addEventListener("click", function () {
        status.textContent = box.dataset.locating;
        navigator.geolocation.getCurrentPosition(function (position) {
          lat.value = position.coords.latitude.toFixed(6);
          lng.value = position.coords.longitude.toFixed(6);
          resolved.value = "device";
          if (!text.value) text.placeholder = box.dataset.here;
          status.textContent = box.dataset.located.replace(
            "{metres}", String(Math.round(position.coords.accuracy || 0)));
          hide();
        }, function () {
          status.textContent = box.dataset.locateFailed;
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
      });
    }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-places]"), setup);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
