// The model bar (picker, state indicator, settings toggle) and the settings drawer: the selected model's
// status and memory fit, load/unload, a download under way, its five parameters within their bounds, offline
// mode, kernel context and tools.

import { formatMb, h, iconButton } from "./chat-dom.js";
import { createDownloads, percent } from "./chat-download.js";
import { createModelFiles } from "./chat-model-files.js";
import { toolRows } from "./chat-tool-switches.js";
import { optionFor, sizeText } from "./model-label.js";

const STATE_TEXT = { not_loaded: "Not loaded", loading: "Loading…", ready: "Ready", generating: "Generating…" };
const PARAM_ORDER = ["context_window", "max_tokens", "temperature", "top_p", "top_k"];
const PARAM_LABEL = { context_window: "Context window", max_tokens: "Max tokens", temperature: "Temperature",
  top_p: "Top p", top_k: "Top k" };
const STEP = { context_window: 256, max_tokens: 1, temperature: 0.05, top_p: 0.01, top_k: 1 };
const STATUS_TEXT = { loaded: "loaded", downloaded: "downloaded", available: "not downloaded", remote: "remote server" };
const RUNTIME_TEXT = { llama_cpp: "llama.cpp", mlx_lm: "MLX", mlx_vlm: "MLX (vision)", openai: "its server" };

// request(action, args) -> Promise (errors are shown by the caller); alert(text, kind); onOpen() when the
// drawer opens.
export function createModelBar({ request, alert, onOpen }) {
  const select = h("select", { class: "ancia-model-select", "aria-label": "Model",
    onchange: () => request("select_model", { model_id: select.value }).catch(() => render(snapshot)) });
  const stateEl = h("span", { class: "ancia-state", role: "status", "aria-label": "Model state" });
  const offlineBadge = h("span", { class: "ancia-badge", hidden: true }, "offline");
  const toggle = iconButton("settings", "Model settings", () => setOpen(drawer.hidden), { "aria-expanded": "false" });
  const bar = h("div", { class: "ancia-model-bar" }, select, stateEl, offlineBadge, toggle);

  const info = h("div", { class: "ancia-model-info" });
  const load = h("button", { type: "button", class: "ancia-btn ancia-primary", "aria-label": "Load model",
    onclick: () => busy(load, request("load_model", { model_id: snapshot.selected_model })) }, "Load");
  const unload = h("button", { type: "button", class: "ancia-btn", "aria-label": "Unload model",
    onclick: () => busy(unload, request("unload_model")) }, "Unload");
  const setting = (name, label) => {
    const box = h("input", { type: "checkbox", role: "switch", "aria-label": label,
      onchange: () => request("update_settings", { settings: { [name]: box.checked } })
        .catch(() => { box.checked = !box.checked; }) });
    return box;
  };
  const offline = setting("offline", "Offline mode");
  const kernelContext = setting("kernel_context", "Kernel context");
  const params = h("div", { class: "ancia-params" });
  const tools = h("div", { class: "ancia-tool-switches" });
  const files = createModelFiles({ request, alert });
  const downloads = createDownloads({ onChange: () => render(snapshot) });
  const drawer = h("section", { class: "ancia-drawer", "aria-label": "Model settings", hidden: true },
    h("div", { class: "ancia-drawer-row" }, info, h("div", { class: "ancia-drawer-buttons" }, load, unload)),
    downloads.el, params,
    h("label", { class: "ancia-switch" }, offline,
      h("span", {}, "Offline mode"), h("small", {}, "never download models or reach the network")),
    h("label", { class: "ancia-switch" }, kernelContext,
      h("span", {}, "Kernel context"), h("small", {}, "let tools read this kernel's variables")),
    tools, files.el);
  const inputs = {};
  let snapshot = null;

  function setOpen(open) {
    drawer.hidden = !open;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open && onOpen) onOpen();
  }

  function busy(button, promise) {
    button.disabled = true;
    promise.catch(() => {}).finally(() => { button.disabled = false; });
  }

  function paramRow(name, bound) {
    const attrs = { min: bound.min, max: bound.max, step: STEP[name] };
    const range = h("input", { type: "range", ...attrs, "aria-label": `${PARAM_LABEL[name]} slider`, tabindex: "-1" });
    const number = h("input", { type: "number", ...attrs, "aria-label": PARAM_LABEL[name], class: "ancia-param-number" });
    const commit = (value) => {
      const parsed = bound.type === "int" ? parseInt(value, 10) : parseFloat(value);
      if (Number.isNaN(parsed)) { render(snapshot); return; }
      if (parsed === snapshot.params[name]) return;
      request("set_params", { model_id: snapshot.selected_model, params: { [name]: parsed } })
        .catch(() => render(snapshot));
    };
    range.addEventListener("input", () => { number.value = range.value; });
    range.addEventListener("change", () => commit(range.value));
    number.addEventListener("change", () => commit(number.value));
    number.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); commit(number.value); } });
    inputs[name] = { range, number };
    return h("div", { class: "ancia-param" },
      h("label", { class: "ancia-param-label" }, PARAM_LABEL[name],
        h("small", {}, `${bound.min} – ${bound.max}`)), range, number);
  }

  function render(snap) {
    if (!snap) return;
    snapshot = snap;
    const models = snap.models || [];
    const optionKey = JSON.stringify(models.map((m) => [m.id, m.title, m.status, m.fits, m.runtime, m.size_mb]));
    if (select.dataset.key !== optionKey) {
      select.dataset.key = optionKey;
      select.replaceChildren(...models.map((m) => optionFor(m, h)));
    }
    select.value = snap.selected_model;
    const model = models.find((m) => m.id === snap.selected_model) || {};
    select.title = select.selectedOptions[0] ? select.selectedOptions[0].title : "";
    const download = downloads.of(snap.selected_model);
    const state = download ? "loading" : snap.model_state;
    const pct = download && percent(download);
    stateEl.textContent = download ? `Downloading${pct === null ? "…" : ` ${pct}%`}` : STATE_TEXT[state] || state;
    stateEl.dataset.state = state;
    stateEl.title = stateEl.textContent; // where the view is narrow, the dot alone shows and this says it
    offlineBadge.hidden = !snap.settings.offline;
    offline.checked = Boolean(snap.settings.offline);
    kernelContext.checked = Boolean(snap.settings.kernel_context);
    const loadedHere = snap.loaded_model === snap.selected_model;
    const remote = model.status === "remote";
    // not downloaded: "280 MB to download"; downloaded or loaded: "loaded · 90 MB on disk"
    const where = remote || model.status === "available" ? sizeText(model) || STATUS_TEXT.remote
      : `${STATUS_TEXT[model.status] || model.status} · ${sizeText(model)}`;
    info.replaceChildren(
      h("strong", {}, model.title || snap.selected_model),
      h("span", { class: "ancia-model-facts" },
        `${where} · runs on ${RUNTIME_TEXT[model.runtime] || model.runtime}`,
        remote ? "" : ` · needs ≈${formatMb(model.memory_mb)} · `,
        remote ? "" :
          h("span", { class: model.fits ? "ancia-fits" : "ancia-nofit" }, model.fits ? "fits in memory" : "may not fit in memory"),
        model.vision ? " · sees images" : ""),
      ...(snap.loaded_model && !loadedHere ? [h("span", { class: "ancia-model-facts" }, `Loaded now: ${snap.loaded_model}`)] : []));
    load.disabled = loadedHere || state === "loading";
    unload.disabled = !snap.loaded_model || state === "loading";
    const bounds = snap.param_bounds || {};
    const boundKey = JSON.stringify(bounds);
    if (params.dataset.key !== boundKey) {
      params.dataset.key = boundKey;
      params.replaceChildren(...PARAM_ORDER.filter((n) => bounds[n]).map((n) => paramRow(n, bounds[n])));
    }
    for (const [name, { range, number }] of Object.entries(inputs)) {
      const value = snap.params[name];
      if (document.activeElement !== number) number.value = value;
      if (document.activeElement !== range) range.value = value;
    }
    files.render(snap);
    const toolKey = JSON.stringify(snap.tools || []);
    if (tools.dataset.key !== toolKey) {
      tools.dataset.key = toolKey;
      tools.replaceChildren(...toolRows(snap.tools, request));
    }
  }

  // A `download` message from the kernel, or a snapshot's downloads under way.
  const download = (d) => downloads.update(d);
  const syncDownloads = (list) => downloads.sync(list);

  return { bar, drawer, render, setOpen, download, syncDownloads, downloading: downloads.of,
    destroy: downloads.destroy };
}
