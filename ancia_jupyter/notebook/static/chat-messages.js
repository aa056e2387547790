// The message list: the current chat's messages from the kernel's snapshot, reconciled by id so that a state
// push only touches what changed, and the answers being written, drawn from their events. The kernel sends
// this view the events of every answer in the chat it shows, from the first (a view that connects in the
// middle of an answer gets it again from its start), so an answer's text is always the sum of its events;
// the snapshot only says what is stored. A streaming message keeps its text in a buffer and re-renders its
// Markdown at most every 50 ms; the rest of the list is never rebuilt per token.

import { h, iconButton, throttle } from "./chat-dom.js";
import { renderMarkdown } from "./markdown.js";
import { toolCard } from "./chat-tools.js";

const RENDER_MS = 50;
const ROLE_LABEL = { user: "You", assistant: "Assistant", tool: "Tool", system: "System" };

export class MessageList {
  // onAction(kind, message, extra): "copy", "edit", "delete", "regenerate", "continue"; onApprove(callId, approved).
  constructor({ onAction, onApprove, emptyView }) {
    this.onAction = onAction;
    this.onApprove = onApprove;
    this.el = h("div", { class: "ancia-messages", role: "log", "aria-label": "Messages", "aria-live": "polite" });
    this.empty = emptyView;
    this.chatId = null;
    this.messages = [];
    this.items = new Map(); // message id -> { el, sig }
    this.streams = new Map(); // message id -> { chatId, text, calls: Map, finished, status, render }
    this.results = new Map(); // tool call id -> { output, error, duration }
    this.waiting = new Set(); // tool call ids waiting for approval
    this.editing = null;
    this.el.addEventListener("click", (e) => this.onClick(e));
  }

  get generating() {
    return [...this.streams.values()].some((s) => !s.finished);
  }

  hasCall(callId) {
    return Boolean(this.el.querySelector(`[data-call-id="${CSS.escape(callId)}"]`));
  }

  setApprovals(ids) {
    const next = new Set(ids);
    const changed = [...next].some((id) => !this.waiting.has(id)) || [...this.waiting].some((id) => !next.has(id));
    this.waiting = next;
    if (changed) this.setMessages(this.chatId, this.messages, true);
  }

  // A snapshot's messages for `chatId`; `force` re-renders every message (approvals changed).
  setMessages(chatId, messages, force = false) {
    if (chatId !== this.chatId) {
      this.items.forEach((item) => item.el.remove());
      this.items.clear();
      this.editing = null;
      this.chatId = chatId;
    }
    this.messages = messages;
    for (const m of messages) {
      if (m.role === "tool" && m.tool_call_id && !this.results.has(m.tool_call_id)) {
        const error = m.content.startsWith("error: ") ? m.content.slice(7) : null;
        this.results.set(m.tool_call_id, { output: error ? null : m.content, error });
      }
    }
    const called = new Set(messages.flatMap((m) => (m.tool_calls || []).map((c) => c.id)));
    const shown = messages.filter((m) => m.role !== "system" && !(m.role === "tool" && called.has(m.tool_call_id)));
    for (const [id, stream] of this.streams) {
      // Written and stored, or in another chat (shown again from its events if the view goes back): the
      // snapshot has it. Still being written: its events have the text, whatever the store holds so far.
      if (stream.finished || stream.chatId !== chatId) this.dropStream(id);
      else if (!shown.some((m) => m.id === id)) shown.push({ id, role: "assistant", content: "", status: "partial", tool_calls: [] });
    }
    const pinned = this.isPinned();
    const seen = new Set();
    let previous = null;
    for (const m of shown) {
      seen.add(m.id);
      const item = this.renderItem(m, force);
      const want = previous ? previous.nextSibling : this.el.firstChild;
      if (item.el !== want) this.el.insertBefore(item.el, want);
      previous = item.el;
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) { item.el.remove(); this.items.delete(id); }
    }
    if (this.empty) {
      if (shown.length) this.empty.remove();
      else if (!this.empty.isConnected) this.el.append(this.empty);
    }
    if (pinned) this.scrollToEnd();
  }

  renderItem(m, force) {
    const stream = this.streams.get(m.id);
    const content = stream ? stream.text : m.content;
    const calls = [...(m.tool_calls || []), ...(stream ? [...stream.calls.values()] : [])]
      .filter((c, i, all) => all.findIndex((o) => o.id === c.id) === i);
    const status = stream && !stream.finished ? "streaming" : (stream && stream.status) || m.status;
    // cut at the max_tokens limit: a marker, and Continue on the chat's last message while nothing is written
    const cut = m.role === "assistant" && status !== "streaming" && ((stream && stream.finishReason) || m.finish_reason) === "length";
    const limit = (stream && stream.tokens) || m.completion_tokens;
    const canContinue = cut && !this.generating && this.messages.length && this.messages[this.messages.length - 1].id === m.id;
    const sig = JSON.stringify([content, status, m.error, calls, calls.map((c) => this.results.get(c.id)),
      (m.attachments || []).length, this.editing === m.id, cut, limit, canContinue]);
    let item = this.items.get(m.id);
    if (item && item.sig === sig && !force) { item.message = m; return item; }
    const open = new Set(item ? [...item.el.querySelectorAll("details[open]")].map((d) => d.dataset.callId) : []);
    const el = item ? item.el : h("article", { class: `ancia-msg ancia-role-${m.role}`, dataset: { id: m.id } });
    el.setAttribute("aria-label", `${ROLE_LABEL[m.role] || m.role} message`);
    el.classList.toggle("ancia-streaming", status === "streaming");
    const body = h("div", { class: "ancia-md" });
    // the same safe renderer for questions and answers: the text is escaped before any Markdown is read
    if (m.role === "assistant" || m.role === "user") body.innerHTML = renderMarkdown(content);
    else body.textContent = content;
    const parts = [];
    const images = (m.attachments || []).filter((a) => a.data);
    if (images.length) {
      parts.push(h("div", { class: "ancia-attachments" }, images.map((a) =>
        h("img", { src: `data:${a.mime || "image/png"};base64,${a.data}`, alt: "attached image" }))));
    }
    if (calls.length) {
      parts.push(h("div", { class: "ancia-tools" }, calls.map((c) => toolCard(c, this.results.get(c.id),
        this.waiting.has(c.id) ? { waiting: true, decide: (ok) => this.onApprove(c.id, ok) } : null, open.has(c.id)))));
    }
    if (this.editing === m.id) parts.push(this.editor(m, content));
    else if (content || m.role !== "assistant" || (!calls.length && status !== "streaming")) parts.push(body);
    if (status === "streaming" && !content && !calls.length) parts.push(h("div", { class: "ancia-typing", "aria-label": "Writing" }, h("i"), h("i"), h("i")));
    if (status === "stopped") parts.push(h("div", { class: "ancia-msg-status" }, "Stopped"));
    if (cut) {
      parts.push(h("div", { class: "ancia-msg-status ancia-cut" },
        h("span", {}, limit ? `Stopped at the ${limit}-token limit` : "Stopped at the token limit"),
        canContinue ? h("button", { type: "button", class: "ancia-btn ancia-continue", title: "Write on from where the answer stopped",
          onclick: () => this.onAction("continue", this.items.get(m.id)?.message || m, {}) }, "Continue") : null));
    }
    if (status === "error" || m.error) parts.push(h("div", { class: "ancia-msg-status ancia-error", role: "alert" }, m.error || "Error"));
    if (this.editing !== m.id) parts.push(this.actions(m, status === "streaming"));
    el.replaceChildren(...parts);
    item = { el, sig, message: m, body };
    this.items.set(m.id, item);
    return item;
  }

  actions(m, busy) {
    const act = (kind) => () => this.onAction(kind, this.items.get(m.id)?.message || m, {
      content: this.streams.get(m.id)?.text ?? m.content });
    return h("div", { class: "ancia-msg-actions" },
      iconButton("copy", "Copy message", act("copy")),
      m.role === "assistant" ? iconButton("regen", "Regenerate", act("regenerate"), { disabled: busy }) : null,
      iconButton("edit", "Edit message", () => { this.editing = m.id; this.setMessages(this.chatId, this.messages); },
        { disabled: busy }),
      iconButton("trash", "Delete message", act("delete"), { disabled: busy }));
  }

  editor(m, content) {
    const area = h("textarea", { class: "ancia-edit", "aria-label": "Edit message", rows: 4 });
    area.value = content;
    const done = () => { this.editing = null; this.setMessages(this.chatId, this.messages); };
    const save = (regenerate) => {
      if (!area.value.trim()) return;
      this.onAction("edit", m, { content: area.value, regenerate });
      done();
    };
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.preventDefault(); done(); }
      if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) { e.preventDefault(); save(m.role === "user"); }
    });
    setTimeout(() => area.focus(), 0);
    return h("div", { class: "ancia-editor" }, area, h("div", { class: "ancia-editor-actions" },
      h("button", { type: "button", class: "ancia-btn", onclick: done }, "Cancel"),
      h("button", { type: "button", class: "ancia-btn", onclick: () => save(false) }, "Save"),
      m.role === "user"
        ? h("button", { type: "button", class: "ancia-btn ancia-primary", onclick: () => save(true) }, "Save and regenerate")
        : null));
  }

  // -- streaming ---------------------------------------------------------------------------------------

  onEvent(event) {
    switch (event.type) {
      case "message_started": { // a new message, or an answer told again from its start: its text starts empty
        for (const s of this.streams.values()) if (s.chatId === event.chat_id) s.finished = true;
        this.dropStream(event.message_id);
        this.stream(event.message_id, event.chat_id);
        if (event.chat_id === this.chatId) this.setMessages(this.chatId, this.messages);
        break;
      }
      case "token": {
        const stream = this.stream(event.message_id, event.chat_id);
        stream.text += event.text;
        stream.render();
        break;
      }
      case "tool_call": {
        this.stream(event.message_id, event.chat_id).calls.set(event.id, { id: event.id, name: event.name, arguments: event.arguments });
        this.refresh(event.message_id);
        break;
      }
      case "tool_result": {
        this.results.set(event.id, { output: event.output, error: event.error, duration: event.duration });
        const card = this.el.querySelector(`[data-call-id="${CSS.escape(event.id)}"]`);
        const owner = card && card.closest("article");
        if (owner) this.refresh(Number(owner.dataset.id));
        break;
      }
      case "done": {
        const stream = this.streams.get(event.message_id);
        if (stream) {
          stream.render.flush();
          stream.finished = true;
          stream.status = event.status === "complete" ? null : event.status;
          stream.finishReason = event.finish_reason || null;
          stream.tokens = (event.usage && event.usage.completion_tokens) || null;
          this.refresh(event.message_id);
        }
        for (const [id, s] of this.streams) {
          if (!s.finished && s.chatId === event.chat_id && id < event.message_id) s.finished = true;
        }
        break;
      }
      default:
        break;
    }
  }

  // The stream of a message being written, made empty on first use.
  stream(messageId, chatId) {
    let stream = this.streams.get(messageId);
    if (!stream) {
      stream = { chatId, text: "", calls: new Map(), finished: false, status: null };
      stream.render = throttle(() => this.paint(messageId), RENDER_MS);
      this.streams.set(messageId, stream);
    }
    return stream;
  }

  // Re-render only the streaming message's Markdown (the hot path while tokens arrive).
  paint(messageId) {
    const item = this.items.get(messageId);
    const stream = this.streams.get(messageId);
    if (!item || !stream) return;
    if (!item.el.contains(item.body) || this.editing === messageId) { this.refresh(messageId); return; }
    const pinned = this.isPinned();
    item.body.innerHTML = renderMarkdown(stream.text);
    item.sig = null;
    if (pinned) this.scrollToEnd();
  }

  refresh(messageId) {
    const item = this.items.get(messageId);
    if (!item) return;
    const pinned = this.isPinned();
    this.renderItem(item.message, true);
    if (pinned) this.scrollToEnd();
  }

  dropStream(messageId) {
    const stream = this.streams.get(messageId);
    if (stream) stream.render.cancel();
    this.streams.delete(messageId);
  }

  // Scroll to a message and flash it (a search result opened); false when it is not shown.
  reveal(messageId) {
    let el = this.items.get(messageId)?.el;
    const m = this.messages.find((x) => x.id === messageId);
    if (!el && m && m.tool_call_id) { // a tool's result is shown in the card of the message that called it
      const card = this.el.querySelector(`[data-call-id="${CSS.escape(m.tool_call_id)}"]`);
      el = card && card.closest("article");
    }
    if (!el) return false;
    el.scrollIntoView({ block: "center" });
    el.classList.remove("ancia-flash");
    void el.offsetWidth; // restart the animation
    el.classList.add("ancia-flash");
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => el.classList.remove("ancia-flash"), 2400);
    return true;
  }

  isPinned() {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 80;
  }

  scrollToEnd() {
    this.el.scrollTop = this.el.scrollHeight;
  }

  onClick(e) {
    const button = e.target.closest(".ancia-code-copy");
    if (!button) return;
    const code = button.parentElement.querySelector("code");
    this.onAction("copy-code", null, { content: code ? code.textContent : "", button });
  }

  destroy() {
    clearTimeout(this.flashTimer);
    this.streams.forEach((s) => s.render.cancel());
    this.streams.clear();
  }
}
