// "Work in the notebook": the switch for the setting notebook_agent, beside the tools in the settings drawer, and
// the code a notebook.run_code call asks to run, shown as code on its card and its approval (a call's arguments
// are shown as JSON, where the code's line breaks would read "\n"): the user approves what they can read.

import { h } from "./chat-dom.js";

const RUN_TOOL = new Set(["notebook.run_code", "notebook_run_code"]); // a stored call has the name the model used
const BAR_CODE = "white-space: pre-wrap; margin: 4px 0 0; max-height: 10em; overflow: auto; "
  + "font-family: var(--jp-code-font-family, monospace);";

function codeOf(text) {
  try {
    const code = JSON.parse(text).code;
    return typeof code === "string" ? code : null;
  } catch (err) {
    return null;
  }
}

// The arguments element and code of a notebook.run_code card or approval not looked at yet (null otherwise);
// each is looked at once.
function runCodeIn(el, nameSelector, argsSelector) {
  el.dataset.agentCode = "";
  const name = el.querySelector(nameSelector);
  const args = el.querySelector(argsSelector);
  const code = name && RUN_TOOL.has(name.textContent) && args ? codeOf(args.textContent) : null;
  return code === null ? null : { args, code };
}

// Cards and approvals of notebook.run_code not shown as code yet: their arguments become the code itself.
function showCode(root) {
  for (const card of root.querySelectorAll("details.ancia-tool:not([data-agent-code])")) {
    const found = runCodeIn(card, ".ancia-tool-name", ".ancia-tool-body > pre");
    if (found === null) continue;
    const label = found.args.previousElementSibling;
    if (label) label.textContent = "Code";
    found.args.replaceWith(h("pre", { class: "ancia-agent-code", "aria-label": "Code to run" }, found.code));
  }
  for (const bar of root.querySelectorAll(".ancia-approval:not([data-agent-code])")) {
    const found = runCodeIn(bar, "strong", "code");
    if (found === null) continue;
    found.args.parentElement.style.whiteSpace = "normal";
    found.args.replaceWith(h("pre", { class: "ancia-agent-code", "aria-label": "Code to run", style: BAR_CODE },
                             found.code));
  }
}

// mountAgent({ drawer, root, request }) -> { update(snapshot), destroy() }
export function mountAgent({ drawer, root, request }) {
  const box = h("input", { type: "checkbox", role: "switch", "aria-label": "Work in the notebook",
    onchange: () => request("update_settings", { settings: { notebook_agent: box.checked } })
      .catch(() => { box.checked = !box.checked; }) });
  const el = h("label", { class: "ancia-switch", title: "The assistant may read the notebook's cells, add cells, and "
      + "run code in this kernel: each run asks you first, showing the code." }, box,
    h("span", {}, "Work in the notebook"), h("small", {}, "read and add cells; run code after you approve"));
  const tools = drawer.querySelector(".ancia-tool-switches");
  if (tools) tools.before(el);
  else drawer.append(el);
  const observer = new MutationObserver(() => showCode(root));
  observer.observe(root, { childList: true, subtree: true });
  return {
    update(snapshot) {
      box.checked = Boolean(snapshot && snapshot.settings && snapshot.settings.notebook_agent);
    },
    destroy() {
      observer.disconnect();
    },
  };
}
