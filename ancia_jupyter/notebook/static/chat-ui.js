// The chat UI, shared by the notebook panel (anywidget) and the JupyterLab sidebar (kernel comm).
//
// It is a thin view over the kernel's PanelSession (docs/panel-protocol.md): every action is a request,
// the kernel's snapshot is the truth, and the engine's batched events make answers stream in. No
// framework and no dependency on anywidget or JupyterLab: the host hands over a `channel`.

import { copyText, h } from "./chat-dom.js";
import { mountAgent } from "./chat-agent.js";
import { createAlerts } from "./chat-alerts.js";
import { createAvatar } from "./chat-avatar.js";
import { createChatHeader, createChatList } from "./chat-list.js";
import { createComposer } from "./chat-composer.js";
import { createLoadingLine } from "./chat-loading.js";
import { download, fileName } from "./chat-export.js";
import { MessageList } from "./chat-messages.js";
import { createModelBar } from "./chat-models.js";
import { createPluginsPage } from "./chat-plugins.js";
import { createSearch } from "./chat-search.js";
import { approvalBar } from "./chat-tools.js";

const NARROW_PX = 620;

// Request ids start at a random number: a widget shown twice has two views whose replies reach both.
function createRpc(channel) {
  let next = Math.floor(Math.random() * 2 ** 40);
  const pending = new Map();
  return {
    request(action, args = {}) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, action });
        channel.send({ type: "request", id, action, ...args });
      });
    },
    // true when `msg` was a reply to this view; another view's reply is left to the caller.
    receive(msg) {
      if (msg.type !== "reply") return false;
      const waiter = pending.get(msg.id);
      if (!waiter) return false;
      pending.delete(msg.id);
      if (msg.ok) waiter.resolve(msg.data);
      else waiter.reject(new Error(msg.error || `${waiter.action} failed`));
      return true;
    },
    cancel() {
      pending.forEach((w) => w.reject(new Error("The chat view was closed.")));
      pending.clear();
    },
  };
}

// mountChat(element, channel, { height }) -> { cleanup, focus, setInput }: `cleanup()` removes the view and
// stops listening; `setInput(text)` puts text in the message box without sending it; `focus()` focuses it.
export function mountChat(element, channel, options = {}) {
  const rpc = createRpc(channel);
  const alerts = createAlerts();
  const alert = alerts.alert;
  const offline = h("div", { class: "ancia-alert ancia-alert-error ancia-disconnected", role: "alert" },
    "Not connected to the kernel. Run this cell again to reconnect the chat panel.");
  const timers = new Set();
  let snapshot = null;
  let approvals = [];
  let listOpen = false;
  let closed = false;

  // Every request goes through here: a snapshot in the reply is applied, an error is shown in one line.
  function request(action, args) {
    return rpc.request(action, args).then((data) => {
      if (data && data.chats && data.messages) apply(data);
      return data;
    }, (err) => {
      if (!closed) alert(err.message);
      throw err;
    });
  }

  // A search result opens its chat at its message, which flashes.
  function openAt(chatId, messageId) {
    setList(false);
    request("select_chat", { chat_id: chatId }).then(() => {
      if (!messages.reveal(messageId)) alert("That message is not shown in the chat any more.", "info");
    }, () => {});
  }

  const search = createSearch({ request: (action, args) => rpc.request(action, args), onOpen: openAt,
    onActive: (on) => list.setSearching(on) });
  const list = createChatList({
    onSelect: (id) => { setList(false); request("select_chat", { chat_id: id }).catch(() => {}); },
    onNew: () => { setList(false); request("new_chat").then(() => composer.focus(), () => {}); },
    search,
  });
  const header = createChatHeader({
    onRename: (title) => request("rename_chat", { chat_id: snapshot.current_chat, title }).catch(() => render()),
    onDuplicate: () => request("duplicate_chat", { chat_id: snapshot.current_chat }).catch(() => {}),
    onExport: (format) => request("export_chat", { chat_id: snapshot.current_chat, format })
      .then((data) => download(data.text, fileName(data.title, format), format), () => {}),
    onDelete: () => request("delete_chat", { chat_id: snapshot.current_chat }).catch(() => {}),
    onToggleList: () => setList(!listOpen),
  });
  // The model settings and the Plugins page are two drawers of the header: one open at a time.
  const models = createModelBar({ request, alert, onOpen: () => plugins.setOpen(false) });
  const loading = createLoadingLine({ alerts, downloading: models.downloading });
  const plugins = createPluginsPage({ request: (action, args) => rpc.request(action, args),
    onOpen: () => models.setOpen(false) });
  models.bar.append(plugins.toggle);
  const welcomeFace = createAvatar(56);
  const welcome = h("div", { class: "ancia-welcome" }, welcomeFace.el,
    h("p", {}, "Ask anything. Your chats stay on this machine, in this kernel's store."));
  const messages = new MessageList({
    emptyView: welcome,
    onAction: (kind, message, extra) => {
      if (kind === "copy" || kind === "copy-code") {
        copyText(extra.content).then((ok) => {
          if (extra.button) { extra.button.textContent = ok ? "Copied" : "Copy failed"; setTimeout(() => { extra.button.textContent = "Copy"; }, 1500); }
          else alert(ok ? "Copied to the clipboard." : "Could not copy.", ok ? "info" : "error");
        });
      } else if (kind === "edit") {
        request("edit_message", { message_id: message.id, content: extra.content, regenerate: Boolean(extra.regenerate) })
          .catch(() => {});
      } else if (kind === "delete") {
        request("delete_message", { message_id: message.id }).catch(() => {});
      } else if (kind === "regenerate") {
        request("regenerate", { message_id: message.id }).catch(() => {});
      } else if (kind === "continue") {
        request("continue", { message_id: message.id }).catch(() => {});
      }
    },
    onApprove: (callId, approved) => decide(callId, approved),
  });
  const approvalsEl = h("div", { class: "ancia-approvals" });
  const composer = createComposer({
    onSend: (text, images) => request("send", { text, images }),
    onStop: () => request("stop").catch(() => {}),
    alert,
  });

  const main = h("div", { class: "ancia-main" },
    h("header", { class: "ancia-header" }, header.el, models.bar),
    models.drawer, plugins.el, alerts.el, messages.el, approvalsEl, composer.el);
  main.addEventListener("click", (e) => { // a click beside the chat list overlay closes it
    if (listOpen && !e.target.closest(".ancia-list-toggle")) setList(false);
  });
  const root = h("div", { class: "ancia-chat", "aria-label": "Ancia chat" }, list.el, main);
  const agent = mountAgent({ drawer: models.drawer, root, request }); // "Work in the notebook"
  if (options.height) root.style.height = options.height;
  element.append(root);

  function setList(open) {
    listOpen = open;
    root.classList.toggle("ancia-list-open", open);
    render();
  }

  function decide(callId, approved) {
    approvals = approvals.filter((c) => c.id !== callId);
    render();
    request("approve_tool", { call_id: callId, approved }).catch(() => {});
  }

  function generating() {
    return messages.generating || (snapshot && snapshot.model_state === "generating");
  }

  function render() {
    if (!snapshot) return;
    agent.update(snapshot);
    const chat = snapshot.chats.find((c) => c.id === snapshot.current_chat) || null;
    const busy = generating();
    list.update(snapshot.chats, snapshot.current_chat);
    header.update(chat, snapshot.mood, busy, listOpen);
    welcomeFace.update(snapshot.mood, false);
    models.render(busy && snapshot.model_state !== "loading" ? { ...snapshot, model_state: "generating" } : snapshot);
    const model = (snapshot.models || []).find((m) => m.id === snapshot.selected_model);
    composer.update({ vision: snapshot.vision || { model: model && model.vision ? model.id : null }, generating: busy });
    messages.setApprovals(approvals.map((c) => c.id));
    approvalsEl.replaceChildren(...approvalBar(approvals.filter((c) => !messages.hasCall(c.id)), decide));
  }

  function apply(state) {
    snapshot = state;
    offline.remove();
    approvals = state.approvals || approvals;
    messages.setMessages(state.current_chat, state.messages);
    models.syncDownloads(state.downloads);
    loading.state(state);
    render();
  }

  function onMessage(msg) {
    if (closed || !msg || typeof msg !== "object" || rpc.receive(msg)) return;
    if (msg.type === "reply") { // another view of the same panel acted: show the same state
      if (msg.ok && msg.data && msg.data.chats && msg.data.messages) apply(msg.data);
    } else if (msg.type === "state") {
      apply(msg.state);
    } else if (msg.type === "download") {
      models.download(msg.download);
      loading.download(msg.download);
    } else if (msg.type === "approval") {
      approvals = [...approvals.filter((c) => c.id !== msg.call.id), msg.call];
      render();
    } else if (msg.type === "events") {
      const before = generating();
      for (const event of msg.events) {
        messages.onEvent(event);
        // a cut answer shows its own marker and Continue button instead of the notice
        if (!loading.event(event) && event.type === "notice" && event.code !== "length_limit") alert(event.text, "info");
        if (event.type === "done") approvals = approvals.filter(() => messages.generating);
      }
      if (before !== generating() || msg.events.some((e) => e.type !== "token")) render();
    }
  }

  // Narrow (the sidebar) or not; the drawers open below the header, however many lines it takes.
  const headerEl = main.firstChild;
  const resize = new ResizeObserver((entries) => {
    for (const { target, contentRect } of entries) {
      if (target === root) root.classList.toggle("ancia-narrow", contentRect.width < NARROW_PX);
      else root.style.setProperty("--a-header-h", `${headerEl.offsetHeight}px`);
    }
  });
  resize.observe(root);
  resize.observe(headerEl);
  const unsubscribe = channel.onMessage(onMessage); // the sidebar's channel hands over its snapshot here
  // Without a snapshot yet, ask for one. The first request can be lost while a reloaded page reconnects to the
  // kernel: ask until a state comes, and say so when the widget's link to the kernel seems gone (a page reload
  // in the middle of an answer).
  const hello = (delay, waited) => {
    if (closed) return;
    if (snapshot) { offline.remove(); return; }
    if (waited >= 6000 && !offline.isConnected) alerts.el.append(offline);
    rpc.request("state").then(apply, (err) => alert(err.message));
    const timer = setTimeout(() => { timers.delete(timer); hello(Math.min(delay * 2, 8000), waited + delay); }, delay);
    timers.add(timer);
  };
  hello(1500, 0);

  return {
    cleanup() {
      if (closed) return;
      closed = true;
      resize.disconnect();
      if (typeof unsubscribe === "function") unsubscribe();
      rpc.cancel();
      timers.forEach(clearTimeout);
      alerts.destroy();
      models.destroy();
      messages.destroy();
      agent.destroy();
      header.destroy();
      plugins.destroy();
      search.destroy();
      root.remove();
    },
    setInput: (text) => composer.setText(text),
    focus: () => composer.focus(),
  };
}
