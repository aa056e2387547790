// Small DOM helpers shared by the chat UI's modules: element creation, icons, clipboard.

// h("button", { class: "x", "aria-label": "Send", onclick: fn }, child, "text", [more])
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "html") el.innerHTML = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const PATHS = {
  plus: "M12 5v14M5 12h14",
  send: "M5 12h14M13 6l6 6-6 6",
  stop: "M7 7h10v10H7z",
  copy: "M9 9h10v10H9zM5 15V5h10",
  edit: "M4 20h4L19 9l-4-4L4 16zM14 6l4 4",
  trash: "M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3",
  regen: "M4 12a8 8 0 0 1 14-5.3M20 12a8 8 0 0 1-14 5.3M18 3v4h-4M6 21v-4h4",
  rename: "M4 20h16M6 16l9-9 3 3-9 9H6z",
  duplicate: "M8 8h12v12H8zM4 16V4h12",
  settings: "M4 6h10M18 6h2M4 12h4M12 12h8M4 18h12M20 18h0M14 4v4M8 10v4M16 16v4",
  chats: "M4 5h16v11H9l-5 4z",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 3-3 4 4M15 9h.01",
  close: "M6 6l12 12M18 6L6 18",
  tool: "M14 6a4 4 0 0 0 5 5l-8 8-3-3 8-8a4 4 0 0 0-2-2z",
  check: "M5 12l5 5 9-10",
  search: "M10.5 17a6.5 6.5 0 1 0 0-13 6.5 6.5 0 0 0 0 13zM15.5 15.5L20 20",
  download: "M12 4v11M7 10l5 5 5-5M5 20h14",
  plugin: "M9 3v4M15 3v4M6 7h12v5a6 6 0 0 1-12 0zM12 18v3",
  refresh: "M20 12a8 8 0 1 1-2.3-5.7M20 4v5h-5",
};

export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "ancia-icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", PATHS[name] || PATHS.plus);
  svg.append(path);
  return svg;
}

// An icon button; the label is what screen readers and role-based locators see.
export function iconButton(name, label, onclick, extra = {}) {
  return h("button", { type: "button", class: "ancia-icon-btn", "aria-label": label, title: label, onclick, ...extra },
    icon(name));
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) {
    const area = h("textarea", { class: "ancia-offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand && document.execCommand("copy");
    area.remove();
    return Boolean(ok);
  }
}

// Calls fn at most once per `ms`, always with the latest state (the streaming message's re-render).
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  const run = () => { timer = null; last = performance.now(); fn(); };
  const call = () => {
    if (timer) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(run, wait);
  };
  call.flush = () => { if (timer) { clearTimeout(timer); run(); } };
  call.cancel = () => { if (timer) clearTimeout(timer); timer = null; };
  return call;
}

export function formatMb(mb) {
  if (!mb && mb !== 0) return "?";
  if (mb < 1) return "<1 MB";
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${mb} MB`;
}
