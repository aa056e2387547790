// Downloads of models, as the kernel reports them (a `download` message for each step, the snapshot's
// `downloads` for those under way): a bar with the size done of the total and the speed, in the model settings,
// and a short line for the model's state ("Downloading 45%").

import { h } from "./chat-dom.js";

const KEEP_MS = { done: 4000, failed: 10000 }; // how long a finished download stays shown

function bytes(n) {
  if (!n && n !== 0) return "?";
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.round(n / 1024)} KB`;
}

// "45.0 MB of 90.0 MB · 12.3 MB/s"
export function downloadText(d) {
  if (d.state === "failed") return `Download failed: ${d.error || "unknown error"}`;
  if (d.state === "done") return `Downloaded ${bytes(d.done)}`;
  const size = d.total ? `${bytes(d.done)} of ${bytes(d.total)}` : bytes(d.done);
  return d.speed > 0 ? `${size} · ${bytes(d.speed)}/s` : size;
}

export function percent(d) {
  return d.fraction === null || d.fraction === undefined ? null : Math.floor(d.fraction * 100);
}

// onChange() when the downloads shown change (the model bar redraws its state).
export function createDownloads({ onChange }) {
  const list = h("div", { class: "ancia-downloads", "aria-label": "Downloads" });
  const shown = new Map(); // model_id + file -> { d, timer }

  function row(d) {
    const pct = percent(d);
    const bar = h("progress", { class: "ancia-progress", max: 100, "aria-label": `Download of ${d.model_id}` });
    if (pct !== null) bar.value = pct; // no value: the bar says "working" without a size
    return h("div", { class: `ancia-download ancia-download-${d.state}`, role: "group", "aria-label": `Downloading ${d.model_id}` },
      h("div", { class: "ancia-download-head" },
        h("span", { class: "ancia-download-name", title: d.file }, `${d.model_id} · ${d.file}`),
        h("span", { class: "ancia-download-pct" }, d.state === "downloading" && pct !== null ? `${pct}%` : "")),
      d.state === "failed" ? null : bar,
      h("span", { class: "ancia-model-facts", role: d.state === "failed" ? "alert" : "status" }, downloadText(d)));
  }

  function draw(notify = true) {
    list.replaceChildren(...[...shown.values()].map((s) => row(s.d)));
    list.hidden = !shown.size;
    if (notify) onChange();
  }

  // One report; a report older than the one shown (a snapshot that lags) is left out.
  function update(d, redraw = true) {
    const key = `${d.model_id}\u0000${d.file}`;
    const old = shown.get(key);
    if (old && old.d.state !== "downloading" && d.state === "downloading") return;
    if (old && old.d.state === "downloading" && d.state === "downloading" && old.d.done > d.done) return;
    if (old) clearTimeout(old.timer);
    const entry = { d, timer: null };
    if (KEEP_MS[d.state]) entry.timer = setTimeout(() => { shown.delete(key); draw(); }, KEEP_MS[d.state]);
    shown.set(key, entry);
    if (redraw) draw();
  }

  // The snapshot's downloads under way (a view that opens in the middle of one); the caller redraws the rest.
  function sync(downloads) {
    (downloads || []).forEach((d) => update(d, false));
    draw(false);
  }

  // The download of `modelId` under way, if any.
  const of = (modelId) => [...shown.values()].map((s) => s.d).find((d) => d.model_id === modelId && d.state === "downloading") || null;

  const destroy = () => shown.forEach((s) => clearTimeout(s.timer));
  list.hidden = true;
  return { el: list, update, sync, of, destroy };
}
