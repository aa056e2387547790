// The notebook panel: anywidget hands us the widget model; its custom messages become the chat UI's channel.

import { mountChat } from "./chat-ui.js";

function channelFor(model) {
  return {
    send(msg) {
      model.send(msg);
    },
    onMessage(callback) {
      const handler = (msg) => callback(msg);
      model.on("msg:custom", handler);
      return () => model.off("msg:custom", handler);
    },
  };
}

export default {
  render({ model, el }) {
    el.classList.add("ancia-widget");
    return mountChat(el, channelFor(model), { height: model.get("height") }).cleanup;
  },
};
