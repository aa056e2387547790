// Tool-call cards: a collapsed line per call (name and status) that expands to its arguments and result,
// with Approve / Deny while a tool marked confirm=True waits for the user.

import { h, icon } from "./chat-dom.js";

function pretty(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch (err) { return value; }
  }
  return JSON.stringify(value, null, 2);
}

function statusOf(call, result, waiting) {
  if (waiting) return ["waiting", "waiting for approval"];
  if (!result) return ["running", "running…"];
  if (result.error) return ["error", "error"];
  return ["done", result.duration ? `done in ${result.duration.toFixed(1)} s` : "done"];
}

// call: {id, name, arguments}; result: {output, error, duration} or undefined;
// approval: { waiting: bool, decide(approved) } or null.
export function toolCard(call, result, approval, wasOpen = false) {
  const [state, text] = statusOf(call, result, approval && approval.waiting);
  const body = h("div", { class: "ancia-tool-body" },
    h("div", { class: "ancia-tool-label" }, "Arguments"),
    h("pre", {}, pretty(call.arguments) || "{}"),
    result ? h("div", { class: "ancia-tool-label" }, result.error ? "Error" : "Result") : null,
    result ? h("pre", { class: result.error ? "ancia-tool-error" : "" }, result.error || pretty(result.output)) : null);
  const card = h("details", { class: `ancia-tool ancia-tool-${state}`, dataset: { callId: call.id } },
    h("summary", {}, icon("tool"), h("span", { class: "ancia-tool-name" }, call.name || "tool"),
      h("span", { class: "ancia-tool-status" }, text)),
    body);
  if (wasOpen || (approval && approval.waiting)) card.open = true;
  if (approval && approval.waiting) {
    body.append(h("div", { class: "ancia-approval-actions" },
      h("span", {}, `Allow ${call.name || "this tool"} to run?`),
      h("button", { type: "button", class: "ancia-btn ancia-primary", "aria-label": "Approve tool call",
        onclick: () => approval.decide(true) }, "Approve"),
      h("button", { type: "button", class: "ancia-btn", "aria-label": "Deny tool call",
        onclick: () => approval.decide(false) }, "Deny")));
  }
  return card;
}

// The bar above the input for approvals whose card is not on screen (another chat, or an older view).
export function approvalBar(calls, decide) {
  return calls.map((call) => h("div", { class: "ancia-approval", role: "alertdialog",
    "aria-label": `Tool ${call.name} asks for approval` },
    icon("tool"),
    h("span", { class: "ancia-approval-text" }, h("strong", {}, call.name), ` wants to run with `,
      h("code", {}, JSON.stringify(call.arguments || {}))),
    h("button", { type: "button", class: "ancia-btn ancia-primary", "aria-label": "Approve tool call",
      onclick: () => decide(call.id, true) }, "Approve"),
    h("button", { type: "button", class: "ancia-btn", "aria-label": "Deny tool call",
      onclick: () => decide(call.id, false) }, "Deny")));
}
