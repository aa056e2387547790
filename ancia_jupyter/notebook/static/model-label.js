// How a model is named and sized where space is tight: a short name for the picker ("SmolLM2 135M Instruct
// (embedded, Q4_1)" is "SmolLM2 135M"), with the full title in its tooltip, and what its size means for it now:
// on disk once downloaded, to download before it can answer otherwise.

import { formatMb } from "./chat-dom.js";

const MARK = { loaded: " ●", available: " ↓", remote: " · server" };

// The title without what is in brackets and without "Instruct"/"Chat": enough to tell the catalog apart.
export function shortTitle(model) {
  const title = String((model && (model.title || model.id)) || "");
  const short = title.replace(/\s*\([^)]*\)/g, "").replace(/[\s_-]+(instruct|chat)\b/gi, "").replace(/\s+/g, " ").trim();
  return short || title;
}

// "90 MB on disk", "280 MB to download", or "" for a server.
export function sizeText(model) {
  if (!model || model.status === "remote") return "";
  return `${formatMb(model.size_mb)} ${model.status === "available" ? "to download" : "on disk"}`;
}

// The picker's option: the short name and a mark for its status; the tooltip says it all.
export function optionFor(model, h) {
  const tip = [model.title || model.id, sizeText(model) || "answers from a server", model.fits === false ? "may not fit in memory" : ""]
    .filter(Boolean).join(" · ");
  return h("option", { value: model.id, title: tip },
    `${shortTitle(model)}${MARK[model.status] || ""}${model.fits === false ? " ⚠" : ""}`);
}
