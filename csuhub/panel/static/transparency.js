// The public transparency page served by the hub: its map (everything else is
// rendered by the hub). The exported page loads map.js and a classic Leaflet
// instead (see csuhub/panel/transparency.py).
import * as L from "./vendor/leaflet/leaflet.esm.min.js";
import "./map.js";

const container = document.getElementById("map");
if (container) window.csuhubMap.draw(L, container);
