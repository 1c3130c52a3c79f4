// The cameras list: its map (the list and the coverage are rendered by the hub).
import * as L from "./vendor/leaflet/leaflet.esm.min.js";
import "./map.js";

const container = document.getElementById("map");
if (container) window.csuhubMap.draw(L, container);
