// Exporting a chat: the "Export chat" menu in the chat's header (Markdown or JSON) and the download the browser
// makes of the text the kernel returns (`export_chat`), named after the chat's title.

import { h, iconButton } from "./chat-dom.js";

const FORMATS = [
  { format: "md", label: "Markdown (.md)", ext: "md", mime: "text/markdown;charset=utf-8" },
  { format: "json", label: "JSON (.json)", ext: "json", mime: "application/json;charset=utf-8" },
];

// A file name made of a chat's title: no path separators or characters file systems refuse.
export function fileName(title, format) {
  const spec = FORMATS.find((f) => f.format === format) || FORMATS[0];
  const base = String(title || "").replace(/[\\/:*?"<>|\u0000-\u001f]+/g, " ").replace(/\s+/g, " ")
    .trim().replace(/^\.+/, "").slice(0, 80).trim() || "chat";
  return `${base}.${spec.ext}`;
}

// Save `text` as a file through the browser's download.
export function download(text, name, format) {
  const spec = FORMATS.find((f) => f.format === format) || FORMATS[0];
  const url = URL.createObjectURL(new Blob([text], { type: spec.mime }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// The header's export button and its menu; onExport(format) when a format is picked.
export function createExportMenu({ onExport }) {
  const menu = h("div", { class: "ancia-menu", role: "menu", "aria-label": "Export chat as", hidden: true },
    FORMATS.map(({ format, label }) => h("button", { type: "button", role: "menuitem", class: "ancia-menu-item",
      onclick: () => { setOpen(false); onExport(format); } }, label)));
  const button = iconButton("download", "Export chat", () => setOpen(menu.hidden),
    { "aria-haspopup": "menu", "aria-expanded": "false" });
  const el = h("span", { class: "ancia-menu-anchor" }, button, menu);
  const onDocument = (e) => { if (!el.contains(e.target)) setOpen(false); };

  function setOpen(open) {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) document.addEventListener("click", onDocument, true);
    else document.removeEventListener("click", onDocument, true);
  }

  menu.addEventListener("keydown", (e) => { if (e.key === "Escape") { setOpen(false); button.focus(); } });
  return { el, button, destroy: () => setOpen(false) };
}
