// Modules the bundle takes from outside labextension/src, typed here.

/** The chat UI shared with the in-notebook panel: `ancia_jupyter/static/chat-ui.js` (docs/panel-protocol.md). */
declare module '*/chat-ui.js' {
  export interface IChannel {
    send(msg: Record<string, unknown>): void;
    onMessage(callback: (msg: Record<string, unknown>) => void): () => void;
  }
  export function mountChat(
    element: HTMLElement,
    channel: IChannel,
    options?: Record<string, unknown>
  ): (() => void) | void;
}

/** The root package.json: the sidebar's version, compared with the kernel's ancia-jupyter. */
declare module '*/package.json' {
  const pkg: { name: string; version: string };
  export default pkg;
}
