// The tools in the model settings: a switch for each, greyed and never ticked while it cannot run (a tool that
// reads the kernel while Kernel context is off, with why in its tooltip), "asks first" while each call waits for
// a yes, and for a tool that reaches the network a "trusted" switch that lets it run without asking.

import { h } from "./chat-dom.js";

const SETTING_TEXT = { kernel_context: "Kernel context" };

// Why a tool cannot run now, in words a person acts on.
export function unavailableText(tool) {
  const setting = SETTING_TEXT[tool.requires] || tool.requires;
  if (tool.requires) return `Unavailable while ${setting} is off: turn it on above to let tools read this kernel's variables.`;
  return `Unavailable: ${tool.usable_reason || "it cannot run now"}.`;
}

// "web.search.duckduckgo" may break after its dots where it does not fit on one line.
const nameParts = (name) => name.split(".").flatMap((part, i, all) => (i < all.length - 1 ? [`${part}.`, h("wbr")] : [part]));

// request(action, args) -> Promise that applies the snapshot of its reply (errors are shown by the caller).
export function toolRows(tools, request) {
  if (!tools || !tools.length) return [];
  return [h("div", { class: "ancia-tool-label" }, "Tools"), ...tools.map((tool) => toolRow(tool, request))];
}

function toolRow(tool, request) {
  const available = tool.available !== false;
  const tip = available ? tool.description || "" : unavailableText(tool);
  const box = h("input", { type: "checkbox", role: "switch", "aria-label": `Tool ${tool.name}`,
    checked: available && Boolean(tool.enabled), disabled: !available,
    onchange: () => request("set_tool_enabled", { name: tool.name, enabled: box.checked })
      .catch(() => { box.checked = !box.checked; }) });
  const asks = tool.needs_approval ?? tool.confirm;
  let trust = null;
  if (tool.network) {
    const trusted = h("input", { type: "checkbox", "aria-label": `Trust ${tool.name}`, checked: Boolean(tool.trusted),
      onchange: () => request("set_tool_trusted", { name: tool.name, trusted: trusted.checked })
        .catch(() => { trusted.checked = !trusted.checked; }) });
    trust = h("label", { class: "ancia-trust",
      title: tool.trusted ? "Runs without asking. Untick to approve each call again."
        : "Reaches the network: each call waits for your approval. Tick to let it run without asking." },
    trusted, h("span", {}, "trusted"));
  }
  return h("div", { class: `ancia-tool-row${available ? "" : " ancia-unavailable"}`, title: tip,
    dataset: { tool: tool.name } },
  h("label", { class: "ancia-switch" }, box, h("span", { class: "ancia-tool-row-name" }, nameParts(tool.name)),
    !available ? h("small", {}, "unavailable") : asks ? h("small", {}, "asks first") : null),
  trust);
}
