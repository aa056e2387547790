// The models on disk, in the model settings: each with the space its files take, and "Delete files" for what
// ancia downloaded or converted, which asks first and says how much space it frees. Your own files (a folder
// or a GGUF file you registered) and servers have nothing to delete here; the kernel refuses them too.

import { formatMb, h } from "./chat-dom.js";

const ON_DISK = new Set(["downloaded", "loaded"]);
const NOT_OURS = new Set(["local", "remote"]);

// Whether the panel offers to delete this model's files.
export function deletable(model) {
  return ON_DISK.has(model.status) && !NOT_OURS.has(model.source);
}

// request(action, args) -> Promise (errors are shown by the caller); alert(text, kind).
export function createModelFiles({ request, alert }) {
  const list = h("ul", { class: "ancia-model-files", "aria-label": "Models on disk" });
  const el = h("div", { class: "ancia-model-files-box" }, h("div", { class: "ancia-tool-label" }, "Models on disk"), list);
  let asking = null; // the model whose deletion waits for a yes
  let deleting = null;
  let models = [];
  let drawn = "";

  function remove(model) {
    asking = null;
    deleting = model.id;
    draw();
    request("delete_model_files", { model_id: model.id })
      .then(() => alert(`Deleted the files of ${model.title}: ${formatMb(model.size_mb)} freed.`, "info"), () => {})
      .finally(() => { deleting = null; draw(); });
  }

  function confirmBox(model) {
    return h("div", { class: "ancia-confirm-box", role: "group", "aria-label": `Delete the files of ${model.title}?` },
      h("span", {}, `Delete the downloaded files of ${model.title}? This frees ${formatMb(model.size_mb)}. `,
        model.status === "loaded" ? "It is unloaded first. " : "",
        "Loading it again downloads them again."),
      h("button", { type: "button", class: "ancia-btn ancia-danger", onclick: () => remove(model) }, "Delete files"),
      h("button", { type: "button", class: "ancia-btn", onclick: () => { asking = null; draw(); } }, "Cancel"));
  }

  function item(model) {
    let action = null;
    if (deleting === model.id) action = h("span", { class: "ancia-working", role: "status" }, h("i", { class: "ancia-spinner" }), "Deleting…");
    else if (deletable(model)) {
      action = h("button", { type: "button", class: "ancia-btn", "aria-label": `Delete files of ${model.title}`,
        disabled: Boolean(deleting), onclick: () => { asking = model.id; draw(); } }, "Delete files");
    } else if (model.source === "local") action = h("small", { title: "Files you registered are never deleted by ancia" }, "your own files");
    return h("li", { class: "ancia-model-file", "aria-label": model.title },
      h("div", { class: "ancia-model-file-row" },
        h("span", { class: "ancia-model-file-name", title: model.title }, model.title, model.status === "loaded" ? " ●" : ""),
        h("span", { class: "ancia-model-facts" }, formatMb(model.size_mb)), action),
      asking === model.id ? confirmBox(model) : null);
  }

  function draw() {
    const shown = models.filter((m) => ON_DISK.has(m.status) && m.source !== "remote");
    const key = JSON.stringify([shown.map((m) => [m.id, m.title, m.status, m.size_mb, m.source]), asking, deleting]);
    if (key === drawn) return;
    drawn = key;
    el.hidden = !shown.length;
    list.replaceChildren(...shown.map(item));
    const box = list.querySelector(".ancia-confirm-box");
    if (box) box.scrollIntoView({ block: "nearest" });
  }

  function render(snap) {
    models = snap.models || [];
    if (asking && !models.some((m) => m.id === asking && deletable(m))) asking = null;
    draw();
  }

  return { el, render };
}
