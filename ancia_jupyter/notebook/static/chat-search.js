// Search every chat, from the chat list: while the search box holds a query, the list shows the messages that
// match it (full text, in the kernel's store: the `search` action), each with its chat, who wrote it and a
// snippet whose matches are bold. A click opens the chat at that message. Snippets are text, never HTML.

import { h, icon } from "./chat-dom.js";

const DEBOUNCE_MS = 250;
const LIMIT = 50;
const WHO = { user: "You", assistant: "Assistant", tool: "Tool", system: "System" };

// The store marks each match in a snippet with ** on both sides: text nodes, the matches in <b>.
export function snippetNodes(snippet) {
  return String(snippet || "").split("**").map((part, i) => (i % 2 ? h("b", { class: "ancia-hit" }, part) : part))
    .filter((part) => part !== "");
}

// request(action, args) -> Promise; onOpen(chatId, messageId); onActive(searching) when the box fills or empties.
export function createSearch({ request, onOpen, onActive }) {
  const input = h("input", { type: "search", class: "ancia-search-input", "aria-label": "Search chats",
    placeholder: "Search all chats", autocomplete: "off", spellcheck: false });
  const box = h("div", { class: "ancia-search" }, icon("search"), input);
  const results = h("ul", { class: "ancia-chat-list ancia-search-results", "aria-label": "Search results", hidden: true });
  let timer = null;
  let asked = 0; // the latest query's number: older replies are dropped
  let active = false;

  function setActive(on) {
    if (on === active) return;
    active = on;
    results.hidden = !on;
    onActive(on);
  }

  function note(text, kind = "") {
    results.replaceChildren(h("li", { class: `ancia-chat-none${kind}`, role: kind ? "alert" : null }, text));
  }

  function run() {
    clearTimeout(timer);
    timer = null;
    const query = input.value.trim();
    if (!query) { asked++; setActive(false); return; }
    setActive(true);
    const mine = ++asked;
    if (!results.children.length) note("Searching…");
    request("search", { query, limit: LIMIT }).then((data) => {
      if (mine === asked) show(query, data.results || []);
    }, (err) => {
      if (mine === asked) note(err.message, " ancia-error");
    });
  }

  function show(query, rows) {
    if (!rows.length) { note(`No message matches “${query}”.`); return; }
    results.replaceChildren(...rows.map((row) => h("li", {},
      h("button", { type: "button", class: "ancia-chat-item ancia-search-hit", title: row.chat_title,
        onclick: () => onOpen(row.chat_id, row.message_id) },
      h("span", { class: "ancia-chat-title" }, row.chat_title),
      h("span", { class: "ancia-chat-meta" }, WHO[row.role] || row.role),
      h("span", { class: "ancia-snippet" }, snippetNodes(row.snippet))))));
  }

  function clear() {
    input.value = "";
    run();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    if (!input.value.trim()) run();
    else timer = setTimeout(run, DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); run(); }
    if (e.key === "Escape" && input.value) { e.preventDefault(); clear(); }
    e.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the box
  });

  return { el: box, results, clear, destroy: () => clearTimeout(timer) };
}
