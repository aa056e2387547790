// One-line alerts over the chat: errors for 10 s, notices for 5 s, at most three at once; and status lines that
// stay as long as what they say is true ("Loading smollm2-135m-instruct…" until the model is loaded), which
// the view takes down itself.

import { h } from "./chat-dom.js";

const SHOWN_MS = { error: 10000, info: 5000 };

export function createAlerts() {
  const el = h("div", { class: "ancia-alerts" });
  const timers = new Set();
  const steady = new Map(); // key -> element

  function item(text, kind, onClose) {
    const node = h("div", { class: `ancia-alert ancia-alert-${kind}`, role: kind === "error" ? "alert" : "status" },
      h("span", {}, text),
      h("button", { type: "button", class: "ancia-alert-close", "aria-label": "Dismiss", onclick: () => { node.remove(); onClose(); } }, "×"));
    return node;
  }

  // A passing alert: `kind` is "error" or "info".
  function alert(text, kind = "error") {
    const node = item(text, kind, () => {});
    el.append(node);
    while (el.children.length > 3) {
      const first = el.firstChild;
      first.remove();
      for (const [key, other] of steady) if (other === first) steady.delete(key);
    }
    const timer = setTimeout(() => { node.remove(); timers.delete(timer); }, SHOWN_MS[kind] || SHOWN_MS.info);
    timers.add(timer);
  }

  // A status line that stays until `clear(key)` (or the user dismisses it); the same key replaces its text.
  function hold(key, text) {
    const old = steady.get(key);
    if (old && old.isConnected) { old.querySelector("span").textContent = text; return; }
    const node = item(text, "info", () => steady.delete(key));
    node.dataset.key = key;
    steady.set(key, node);
    el.append(node);
  }

  function clear(key) {
    const node = steady.get(key);
    if (node) node.remove();
    steady.delete(key);
  }

  const holding = (key) => steady.has(key);
  const destroy = () => { timers.forEach(clearTimeout); timers.clear(); };
  return { el, alert, hold, clear, holding, destroy };
}
