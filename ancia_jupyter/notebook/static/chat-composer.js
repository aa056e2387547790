// The input: a growing text box (Enter sends, Shift+Enter is a new line), Send / Stop, and image
// attachments from a file picker or the clipboard when a model can see them (the snapshot's `vision`);
// without one, the attach button says what to pull.

import { h, icon, iconButton } from "./chat-dom.js";

const MAX_IMAGE_BYTES = 8 * 1024 * 1024;

function readImage(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve({ mime: file.type || "image/png", data: url.slice(url.indexOf(",") + 1), url, name: file.name || "image" });
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

// onSend(text, images) -> Promise (resolves when the kernel took it); onStop(); alert(text, kind).
export function createComposer({ onSend, onStop, alert }) {
  const area = h("textarea", { class: "ancia-input", rows: 1, "aria-label": "Message",
    placeholder: "Ask anything…", title: "Enter sends · Shift+Enter starts a new line" });
  const files = h("input", { type: "file", accept: "image/*", multiple: true, hidden: true, "aria-hidden": "true" });
  const attach = iconButton("image", "Attach image", () => (vision ? files.click() : alert(hint, "info")),
    { class: "ancia-icon-btn ancia-attach" });
  const send = h("button", { type: "submit", class: "ancia-send", "aria-label": "Send", title: "Send (Enter)" }, icon("send"));
  const stop = h("button", { type: "button", class: "ancia-stop", "aria-label": "Stop", title: "Stop the answer",
    hidden: true, onclick: () => onStop() }, icon("stop"), h("span", {}, "Stop"));
  const thumbs = h("div", { class: "ancia-thumbs" });
  const el = h("form", { class: "ancia-composer", "aria-label": "Ask" }, thumbs,
    h("div", { class: "ancia-input-row" }, attach, files, area, stop, send));
  let images = [];
  let vision = false;
  let hint = "";
  let sending = false;

  function grow() {
    area.style.height = "auto";
    area.style.height = `${Math.min(area.scrollHeight, 200)}px`;
  }

  function drawThumbs() {
    thumbs.replaceChildren(...images.map((img, i) => h("figure", { class: "ancia-thumb" },
      h("img", { src: img.url, alt: img.name }),
      iconButton("close", `Remove image ${img.name}`, () => { images.splice(i, 1); drawThumbs(); }))));
  }

  async function add(fileList) {
    for (const file of fileList) {
      if (!file.type.startsWith("image/")) { alert(`${file.name} is not an image.`, "error"); continue; }
      if (file.size > MAX_IMAGE_BYTES) { alert(`${file.name} is larger than 8 MB.`, "error"); continue; }
      images.push(await readImage(file));
    }
    drawThumbs();
  }

  async function submit() {
    const text = area.value;
    if (!text.trim() || sending) return;
    sending = true;
    send.disabled = true;
    try {
      await onSend(text, images.map(({ data, mime }) => ({ data, mime })));
      if (area.value === text) area.value = "";
      images = [];
      drawThumbs();
      grow();
    } catch (err) {
      // the error is shown by the caller; the text stays so nothing is lost
    } finally {
      sending = false;
      send.disabled = false;
    }
  }

  el.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  area.addEventListener("input", grow);
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
    e.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the text box
  });
  area.addEventListener("paste", (e) => {
    const pasted = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
    if (!pasted.length) return;
    e.preventDefault();
    if (!vision) { alert(hint, "info"); return; }
    add(pasted);
  });
  files.addEventListener("change", () => { add([...files.files]); files.value = ""; });

  // vision: {model, hint}: the model an image would go to, or none and what to pull.
  function update({ vision: where, generating }) {
    vision = Boolean(where && where.model);
    hint = (where && where.hint) || "No model here can see images: pick or pull a vision model to attach them.";
    attach.title = vision ? (where.hint ? `Attach image. ${where.hint}` : "Attach image") : hint;
    attach.classList.toggle("ancia-attach-off", !vision);
    if (!vision && images.length) { images = []; drawThumbs(); }
    stop.hidden = !generating;
    send.hidden = Boolean(generating) && !area.value.trim();
  }

  area.addEventListener("input", () => { if (!stop.hidden) send.hidden = !area.value.trim(); });

  // Put `text` in the box (replacing what is there) without sending it; the cursor goes to its end.
  function setText(text) {
    area.value = text;
    area.dispatchEvent(new Event("input"));
    area.focus();
    area.setSelectionRange(text.length, text.length);
    area.scrollTop = area.scrollHeight;
  }

  return { el, update, setText, focus: () => area.focus() };
}
