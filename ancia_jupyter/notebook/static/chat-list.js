// The list of chats (switch, new) and the current chat's header (title, rename, duplicate, delete, mood).

import { h, icon, iconButton } from "./chat-dom.js";
import { createAvatar } from "./chat-avatar.js";
import { createExportMenu } from "./chat-export.js";

function ago(seconds) {
  const delta = Date.now() / 1000 - seconds;
  if (delta < 60) return "just now";
  if (delta < 3600) return `${Math.floor(delta / 60)} min ago`;
  if (delta < 86400) return `${Math.floor(delta / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleDateString();
}

// onSelect(chatId), onNew(); search: the search box and its results (chat-search.js), shown in place of the list.
export function createChatList({ onSelect, onNew, search }) {
  const list = h("ul", { class: "ancia-chat-list", "aria-label": "Chats" });
  const el = h("nav", { class: "ancia-sidebar", "aria-label": "Chat list" },
    h("div", { class: "ancia-sidebar-head" },
      h("span", { class: "ancia-sidebar-title" }, "Chats"),
      h("button", { type: "button", class: "ancia-btn ancia-new-chat", "aria-label": "New chat", onclick: onNew },
        icon("plus"), h("span", {}, "New"))),
    search.el, list, search.results);
  let last = "";

  function update(chats, currentId) {
    const key = JSON.stringify([chats.map((c) => [c.id, c.title, c.message_count, c.updated_at]), currentId]);
    if (key === last) return;
    last = key;
    list.replaceChildren(...chats.map((chat) => h("li", {},
      h("button", { type: "button", class: "ancia-chat-item", "aria-current": chat.id === currentId ? "true" : null,
        title: chat.title, onclick: () => onSelect(chat.id) },
        h("span", { class: "ancia-chat-title" }, chat.title),
        h("span", { class: "ancia-chat-meta" },
          `${chat.message_count} message${chat.message_count === 1 ? "" : "s"} · ${ago(chat.updated_at)}`)))));
    if (!chats.length) list.append(h("li", { class: "ancia-chat-none" }, "No chats yet."));
  }

  // While a search shows its results, the list of chats steps aside.
  const setSearching = (on) => { list.hidden = on; };

  return { el, update, setSearching };
}

// The header of the open chat. onRename(title), onDuplicate(), onExport(format), onDelete(), onToggleList().
export function createChatHeader({ onRename, onDuplicate, onExport, onDelete, onToggleList }) {
  const avatar = createAvatar(30);
  const title = h("h2", { class: "ancia-title" }, "New chat");
  const toggle = iconButton("chats", "Show chats", onToggleList, { class: "ancia-icon-btn ancia-list-toggle",
    "aria-expanded": "false" });
  const rename = iconButton("rename", "Rename chat", () => startRename());
  const duplicate = iconButton("duplicate", "Duplicate chat", () => onDuplicate());
  const exporter = createExportMenu({ onExport });
  const remove = iconButton("trash", "Delete chat", () => askDelete());
  const el = h("div", { class: "ancia-chat-head" }, toggle, avatar.el, title,
    h("div", { class: "ancia-chat-actions" }, rename, duplicate, exporter.el, remove));
  let current = null;
  let confirmTimer = null;

  function startRename() {
    if (!current) return;
    const input = h("input", { class: "ancia-title-input", "aria-label": "Chat title", value: current.title });
    let finished = false;
    const finish = (save) => {
      if (finished) return;
      finished = true;
      input.replaceWith(title);
      const value = input.value.trim();
      if (save && value && value !== current.title) {
        title.textContent = value;
        onRename(value);
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); finish(true); }
      if (e.key === "Escape") { e.preventDefault(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
    title.replaceWith(input);
    input.focus();
    input.select();
  }

  function resetDelete() {
    clearTimeout(confirmTimer);
    confirmTimer = null;
    remove.classList.remove("ancia-confirm");
    remove.setAttribute("aria-label", "Delete chat");
    remove.title = "Delete chat";
  }

  function askDelete() {
    if (!current) return;
    if (confirmTimer) { resetDelete(); onDelete(); return; }
    remove.classList.add("ancia-confirm");
    remove.setAttribute("aria-label", "Confirm delete chat");
    remove.title = "Click again to delete this chat";
    confirmTimer = setTimeout(resetDelete, 4000);
  }

  function update(chat, mood, busy, listOpen) {
    current = chat;
    if (title.isConnected || !el.querySelector(".ancia-title-input")) {
      title.textContent = chat ? chat.title : "New chat";
      title.title = title.textContent; // a long title wraps to two lines; the tooltip has all of it
    }
    for (const button of [rename, duplicate, exporter.button, remove]) button.disabled = !chat;
    avatar.update(mood, busy);
    toggle.setAttribute("aria-expanded", listOpen ? "true" : "false");
  }

  return { el, update, destroy: () => { resetDelete(); exporter.destroy(); } };
}
