// Live updates: one authenticated Socket.IO connection per page. The server
// decides the rooms; pages listen for the events they care about. Without
// JavaScript every page still works; this only saves a reload.
(function () {
  "use strict";
  if (typeof window.io !== "function") { return; }
  const socket = window.io({ transports: ["websocket", "polling"] });
  window.marketplaceSocket = socket;
  document.dispatchEvent(new CustomEvent("marketplace:socket", { detail: socket }));
})();
