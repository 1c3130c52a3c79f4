// The cameras list: its map, and the list kept current. The hub renders the
// list (its words are translated there); when a camera changes state the
// module fetches the page again and swaps the list in, rather than building
// rows itself.
import * as L from "./vendor/leaflet/leaflet.esm.min.js";
import "./map.js";
import { listen, swap } from "./panel.js";

const container = document.getElementById("map");
if (container) window.csuhubMap.draw(L, container);

let timer = null;
const refresh = () => swap(["district-list"]).catch(() => {}); // the next event tries again

listen(["camera_state_changed"], () => {
  clearTimeout(timer);
  timer = setTimeout(refresh, 500);
});
