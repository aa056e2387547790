// The line that says a model is loading: "Loading smollm2-135m-instruct…", then, while its files come down,
// "Downloading smollm2-135m-instruct: 45.0 MB of 90.0 MB · 12.3 MB/s". It stays as long as that is true (a first
// download can take minutes) and goes as soon as the model is loaded or the answer that asked for it has ended:
// the engine's `loading` notice starts it, the kernel's pushes of the model's state and the answer's first
// words end it.

import { downloadText } from "./chat-download.js";

const ENDS = new Set(["token", "tool_call", "error", "done"]);

// alerts: chat-alerts.js; downloading(modelId): the download of that model under way, or null.
export function createLoadingLine({ alerts, downloading }) {
  let loading = null; // { chatId, model }
  const writing = new Map(); // chat id -> the model writing its latest answer

  function show(download) {
    alerts.hold("loading", download && download.state === "downloading"
      ? `Downloading ${loading.model}: ${downloadText(download)}` : `Loading ${loading.model}…`);
  }

  function end() {
    loading = null;
    alerts.clear("loading");
  }

  return {
    // An answer's event; true when it was the loading notice (shown here, not as a passing alert).
    event(e) {
      if (e.type === "message_started") writing.set(e.chat_id, e.model);
      if (e.type === "notice" && e.code === "loading") {
        loading = { chatId: e.chat_id, model: writing.get(e.chat_id) || e.text.replace(/^Loading |…$/g, "") };
        show(downloading(loading.model));
        return true;
      }
      if (loading && e.chat_id === loading.chatId && ENDS.has(e.type)) end();
      return false;
    },
    // A snapshot: the model it says is loaded is ready.
    state(snapshot) {
      if (loading && snapshot.loaded_model === loading.model && !downloading(loading.model)) end();
    },
    // A `download` message.
    download(d) {
      if (loading && d.model_id === loading.model) show(d);
    },
  };
}
