// The maps of the panel and of the public transparency page: one marker per
// point of a <script type="application/json"> the page names in the map's
// data-points, on the configured tile server (data-tiles) or, without one, a
// plain background: then no request leaves the hub.
//
// A classic script, not a module, so that the transparency page exported for
// the city's website (csuhub transparency export) works from file://, where
// browsers refuse modules: there Leaflet is a classic script too (window.L)
// and the maps draw themselves. The panel's modules import this file for its
// side effect and call window.csuhubMap.draw(L, container) with Leaflet's
// module.
(function () {
  "use strict";

  function escaped(text) {
    const node = document.createElement("span");
    node.textContent = text;
    return node.innerHTML;
  }

  function draw(L, container) {
    const source = document.getElementById(container.dataset.points);
    const points = source ? JSON.parse(source.textContent) : [];
    const map = L.map(container, { zoomControl: true, attributionControl: true });
    map.attributionControl.setPrefix(false);
    if (container.dataset.tiles) {
      L.tileLayer(container.dataset.tiles, {
        attribution: escaped(container.dataset.attribution || ""),
        maxZoom: 19,
      }).addTo(map);
    }
    let drawn = 0;
    for (const point of points) {
      const marker = L.circleMarker([point.lat, point.lon], {
        radius: 7,
        weight: 2,
        className: `marker ${point.tone || ""}`,
      });
      // names always shown on a small map (a plain background has no streets to go by)
      const permanent = container.dataset.labels === "always" && points.length <= 40;
      // a node, not a string: Leaflet writes a string tooltip as HTML, and a name
      // may come from the device itself (discovery)
      const label = document.createElement("span");
      label.textContent = point.label;
      marker.bindTooltip(label, { permanent, direction: "right" });
      if (point.href) marker.on("click", () => window.location.assign(point.href));
      marker.addTo(map);
      drawn += 1;
    }
    if (points.length) {
      const bounds = L.latLngBounds(points.map((p) => [p.lat, p.lon]));
      map.fitBounds(bounds.pad(0.15), { maxZoom: 16 });
    } else {
      map.setView([0, 0], 2);
    }
    container.dataset.markers = String(drawn);
    return map;
  }

  window.csuhubMap = { draw };
  if (window.L) {
    document.querySelectorAll(".map[data-points]").forEach((node) => draw(window.L, node));
  }
})();
