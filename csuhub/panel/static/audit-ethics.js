// The ethics figures: each table of the page drawn as a bar chart (charts.js).
import { lang, messages } from "./panel.js";
import { drawAll } from "./charts.js";

const words = messages();
drawAll(document, { lang, describe: (title) => (words.chart || "%(title)s").replace("%(title)s", title) });
