import type { IChannel } from '../../ancia_jupyter/notebook/static/chat-ui.js';

export type Message = Record<string, unknown>;

/**
 * The chat UI's channel over a link's comm.
 *
 * What the kernel says while the link connects — the events of an answer in progress, then the reply to
 * the link's own `state` request — is held and handed to the chat UI as it starts listening, in order and
 * at once: the chat UI starts from that snapshot and does not ask for the state a second time.
 */
export class LinkChannel implements IChannel {
  constructor(private readonly _send: (msg: Message) => void) {}

  send(msg: Message): void {
    this._send(msg);
  }

  onMessage(callback: (msg: Message) => void): () => void {
    this._listeners.add(callback);
    const held = this._held;
    this._held = [];
    this._holding = false;
    held.forEach(msg => callback(msg));
    return () => {
      this._listeners.delete(callback);
    };
  }

  /** From now until the next listener, keep what comes for it (a new comm is opening). */
  hold(): void {
    this._held = [];
    this._holding = true;
  }

  /** Drop what is held (the comm closed before the chat UI listened). */
  drop(): void {
    this._held = [];
    this._holding = false;
  }

  /** A message from the kernel: to the listeners, or held for the next one. */
  deliver(msg: Message): void {
    if (this._holding) {
      this._held.push(msg);
    } else {
      this._listeners.forEach(listener => listener(msg));
    }
  }

  dispose(): void {
    this.drop();
    this._listeners.clear();
  }

  private _held: Message[] = [];
  private _holding = false;
  private _listeners = new Set<(msg: Message) => void>();
}
