// The Plugins page, a drawer beside the model settings: what the plugin registry offers and what is installed,
// with install, update, enable / disable and uninstall per plugin, and why a plugin did not load. Every action
// is a request whose reply is the whole page again (`plugins`, docs/panel-protocol.md); a row shows that it
// is at work while the kernel downloads and loads, then the result, in the row.

import { h, iconButton } from "./chat-dom.js";

const WORKING = { install_plugin: "Installing…", update_plugin: "Updating…", enable_plugin: "Enabling…",
  disable_plugin: "Disabling…", uninstall_plugin: "Uninstalling…" };
const DONE = { install_plugin: "Installed", update_plugin: "Updated", enable_plugin: "Enabled",
  disable_plugin: "Disabled", uninstall_plugin: "Uninstalled" };
const CONFIRM_MS = 4000;

// Whether version `a` is newer than `b`: dotted numbers compare as numbers ("1.10" > "1.9"); else as text.
export function newer(a, b) {
  if (!a || !b || a === b) return false;
  const pa = String(a).split(/[.+-]/);
  const pb = String(b).split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? "0";
    const y = pb[i] ?? "0";
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx > ny;
    return x > y;
  }
  return false;
}

// request(action, args) -> Promise of the reply's data (errors are shown here, not as alerts);
// onOpen() is called when the page opens (the model settings close).
export function createPluginsPage({ request, onOpen }) {
  const list = h("ul", { class: "ancia-plugin-list", "aria-label": "Plugin list" });
  const where = h("div", { class: "ancia-plugins-where" });
  const problem = h("div", { class: "ancia-plugins-problem", role: "alert", hidden: true });
  const refresh = iconButton("refresh", "Refresh plugins", () => load());
  const el = h("section", { class: "ancia-drawer ancia-plugins", "aria-label": "Plugins", hidden: true },
    h("div", { class: "ancia-drawer-title" }, h("strong", {}, "Plugins"), refresh,
      iconButton("close", "Close plugins", () => setOpen(false))),
    h("div", { class: "ancia-plugins-note" }, "More tools for the model, from a plugin registry."),
    where, problem, list);
  const toggle = iconButton("plugin", "Plugins", () => setOpen(el.hidden), { "aria-expanded": "false" });
  let page = null; // the last reply: {installed, registry, registry_error, registry_location}
  let loading = false;
  let failed = null; // why the page could not be read
  const busy = new Map(); // plugin id -> the action in progress
  const results = new Map(); // plugin id -> { ok, text }: the outcome of its last action
  const confirming = new Map(); // plugin id -> timer while "Uninstall" asks to be clicked again

  function setOpen(open) {
    el.hidden = !open;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      if (onOpen) onOpen();
      load();
    }
  }

  function show(data) {
    page = data;
    failed = null;
  }

  function load() {
    loading = true;
    draw();
    return request("plugins").then(show, (err) => { failed = err.message; })
      .finally(() => { loading = false; draw(); });
  }

  function act(action, id) {
    busy.set(id, action);
    results.delete(id);
    draw();
    request(action, { plugin_id: id }).then((data) => {
      show(data);
      const installed = (data.installed || []).find((p) => p.id === id);
      const version = installed && (action === "install_plugin" || action === "update_plugin") ? ` ${installed.version}` : "";
      results.set(id, { ok: true, text: `${DONE[action]}${version}.` });
    }, (err) => {
      results.set(id, { ok: false, text: err.message });
      return request("plugins").then(show, () => {}); // a plugin that failed to load is now listed, disabled
    }).finally(() => { busy.delete(id); draw(); });
  }

  function askUninstall(id) {
    if (confirming.has(id)) {
      clearTimeout(confirming.get(id));
      confirming.delete(id);
      act("uninstall_plugin", id);
      return;
    }
    confirming.set(id, setTimeout(() => { confirming.delete(id); draw(); }, CONFIRM_MS));
    draw();
  }

  function button(label, onclick, { primary = false, extra = {} } = {}) {
    return h("button", { type: "button", class: `ancia-btn${primary ? " ancia-primary" : ""}`, onclick, ...extra }, label);
  }

  function row({ id, installed, entry }) {
    const working = busy.get(id);
    const result = results.get(id);
    const update = installed && entry && newer(entry.version, installed.version) ? entry.version : null;
    const lock = { disabled: Boolean(working) };
    const actions = [];
    if (!installed) actions.push(button("Install", () => act("install_plugin", id), { primary: true, extra: lock }));
    if (update) actions.push(button(`Update to ${update}`, () => act("update_plugin", id), { primary: true, extra: lock }));
    if (installed) {
      const box = h("input", { type: "checkbox", role: "switch", "aria-label": "Enabled", checked: Boolean(installed.enabled),
        disabled: Boolean(working), onchange: () => act(box.checked ? "enable_plugin" : "disable_plugin", id) });
      actions.push(h("label", { class: "ancia-switch" }, box, h("span", {}, "Enabled")));
      const asking = confirming.has(id);
      actions.push(button(asking ? "Confirm uninstall" : "Uninstall", () => askUninstall(id),
        { extra: { ...lock, class: `ancia-btn${asking ? " ancia-confirm" : ""}` } }));
    }
    const facts = [
      installed ? `v${installed.version}` : `v${entry.version}`,
      update ? `v${update} available` : null,
      entry && entry.author ? `by ${entry.author}` : null,
      installed && installed.tools && installed.tools.length ? `tools: ${installed.tools.join(", ")}` : null,
    ].filter(Boolean).join(" · ");
    let status = null;
    if (working) {
      status = h("div", { class: "ancia-plugin-status ancia-working", role: "status" }, h("i", { class: "ancia-spinner" }), WORKING[working]);
    } else if (result) {
      status = h("div", { class: `ancia-plugin-status${result.ok ? " ancia-ok" : " ancia-error"}`, role: result.ok ? "status" : "alert" },
        result.text);
    }
    const broken = installed && installed.error && !(result && !result.ok)
      ? h("div", { class: "ancia-plugin-status ancia-error" }, `Did not load: ${installed.error}`) : null;
    const network = entry ? h("span", { class: `ancia-badge${entry.network ? " ancia-badge-net" : ""}`,
      title: entry.network ? "Its tools reach the internet; offline mode turns them off" : "Its tools work without the network" },
    entry.network ? "uses the network" : "offline") : null;
    return h("li", { class: "ancia-plugin", "aria-label": `Plugin ${id}`, "aria-busy": working ? "true" : null },
      h("div", { class: "ancia-plugin-head" }, h("strong", { class: "ancia-plugin-name" }, id), network,
        installed ? h("span", { class: "ancia-badge" }, installed.enabled ? "installed" : "disabled") : null),
      entry && entry.description ? h("div", { class: "ancia-plugin-desc" }, entry.description) : null,
      h("div", { class: "ancia-model-facts" }, facts),
      broken, status,
      h("div", { class: "ancia-plugin-actions" }, actions));
  }

  function draw() {
    if (el.hidden && !busy.size) return;
    refresh.disabled = loading;
    const installed = page ? page.installed || [] : [];
    const registry = page ? page.registry || [] : [];
    const entries = new Map(registry.map((e) => [e.id, e]));
    const mine = new Set(installed.map((p) => p.id));
    const rows = [...installed.map((p) => ({ id: p.id, installed: p, entry: entries.get(p.id) })),
      ...registry.filter((e) => !mine.has(e.id)).map((e) => ({ id: e.id, entry: e }))];
    where.replaceChildren(...page && page.registry_location
      ? [h("span", {}, "Registry: "), h("code", { title: page.registry_location }, page.registry_location)] : []);
    const why = failed || (page && page.registry_error);
    problem.hidden = !why;
    problem.textContent = why || "";
    if (!page && loading) { list.replaceChildren(h("li", { class: "ancia-chat-none" }, "Reading the registry…")); return; }
    list.replaceChildren(...rows.map(row));
    if (page && !rows.length) list.append(h("li", { class: "ancia-chat-none" }, "The registry lists no plugins yet."));
  }

  function destroy() {
    confirming.forEach(clearTimeout);
    confirming.clear();
  }

  return { el, toggle, setOpen, destroy };
}
