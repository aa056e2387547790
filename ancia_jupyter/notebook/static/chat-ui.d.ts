// Types of chat-ui.js for the JupyterLab sidebar's TypeScript (labextension/), which bundles it.

/** What the chat UI is given to talk to the kernel (docs/panel-protocol.md). */
export interface IChannel {
  /** Send a JSON object to the kernel. */
  send(msg: Record<string, unknown>): void;
  /**
   * Call `callback` with each JSON object from the kernel; returns the function that stops it. A channel that
   * holds messages from before (the sidebar: its first `state` reply and the events before it) hands them over
   * during this call, and the view then starts from that snapshot instead of asking for one.
   */
  onMessage(callback: (msg: Record<string, unknown>) => void): () => void;
}

/** A mounted chat view. */
export interface IChatView {
  /** Remove the view and stop listening to the channel. */
  cleanup(): void;
  /** Put `text` in the message box (replacing what is there) without sending it, and focus the box. */
  setInput(text: string): void;
  /** Focus the message box. */
  focus(): void;
}

export interface IMountOptions {
  /** The chat's CSS height, e.g. `'620px'` or `'100%'`. */
  height?: string;
}

/** Render the chat UI into `element`, talking to the kernel over `channel`. */
export function mountChat(element: HTMLElement, channel: IChannel, options?: IMountOptions): IChatView;
