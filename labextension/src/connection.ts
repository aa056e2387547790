import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { LinkChannel, Message } from './channel';
import { closeComm, subshellReady } from './comm-close';
import { LinkState, loadError } from './link-state';
import { NotebookBridge } from './notebook-bridge';

export type { LinkState } from './link-state';

/** The comm target `ancia_jupyter.notebook.comm.register_comm_target()` registers in the kernel. */
export const COMM_TARGET = 'ancia';

/** The front end's target the kernel opens (and closes at once) when ancia is loaded there. */
export const LOADED_TARGET = 'ancia.loaded';

/** What the "Load Ancia" button runs in the kernel, silently. */
export const LOAD_CODE = '%load_ext ancia_jupyter';

/** The id of the sidebar's own first `state` request, apart from the chat UI's (positive) ids. */
const PROBE_ID = -1;

/** How long to wait for the kernel's first answer before saying it is slow (ms). */
const SLOW_AFTER = 8000;

/** The states in which the kernel's announcement that ancia was loaded makes the sidebar connect. */
const RECONNECT_ON_ANNOUNCE = new Set(['not-loaded', 'failed', 'slow', 'mismatch']);

/**
 * The sidebar's link to one kernel: one `ancia` comm at a time, opened with a `state` request whose
 * reply says whether ancia is loaded there and which version it is. Only a kernel running the same
 * version as this front end is handed to the chat UI, with that reply as its first snapshot.
 */
export class KernelLink implements IDisposable {
  constructor(
    readonly kernel: Kernel.IKernelConnection,
    readonly version: string
  ) {
    this._channel = new LinkChannel(msg => {
      if (!this._comm || this._state.kind !== 'connected') {
        throw new Error('Ancia is not connected to the kernel.');
      }
      this._comm.send(msg as JSONObject);
    });
    kernel.registerCommTarget(LOADED_TARGET, this._onAnnounce);
    this._bridge = new NotebookBridge(kernel, msg => this._comm?.send(msg as JSONObject));
  }

  /** The channel the chat UI is given; it carries messages while the state is `connected`. */
  get channel(): LinkChannel {
    return this._channel;
  }

  get state(): LinkState {
    return this._state;
  }

  get stateChanged(): ISignal<this, LinkState> {
    return this._stateChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Open (or reopen) the comm and ask for the kernel's state. */
  async connect(): Promise<void> {
    const attempt = ++this._attempt;
    this._closeComm();
    this._setState({ kind: 'connecting' });
    let info: KernelMessage.IInfoReply;
    try {
      info = await this.kernel.info;
    } catch (error) {
      if (this._current(attempt)) {
        this._setState({ kind: 'failed', message: `The kernel did not start: ${error}` });
      }
      return;
    }
    await this._closed;
    if (!this._current(attempt)) {
      return;
    }
    const language = info.language_info?.name ?? '';
    if (language && language.toLowerCase() !== 'python') {
      this._setState({ kind: 'unsupported', language });
      return;
    }
    let comm: Kernel.IComm;
    try {
      comm = this.kernel.createComm(COMM_TARGET);
    } catch (error) {
      this._setState({ kind: 'failed', message: `Cannot talk to this kernel: ${error}` });
      return;
    }
    this._comm = comm;
    this._channel.hold();
    let answered = false;
    comm.onClose = msg => {
      if (this._comm !== comm) {
        return;
      }
      this._comm = null;
      this._channel.drop();
      const error = (msg.content.data as Message | undefined)?.error;
      if (typeof error === 'string' && error) {
        this._setState({ kind: 'failed', message: error });
      } else {
        this._setState({ kind: 'not-loaded', unloaded: answered });
      }
    };
    comm.onMsg = msg => {
      if (this._comm !== comm) {
        return;
      }
      const data = msg.content.data as Message;
      if (this._bridge.handle(data)) {
        return; // the kernel's notebook tools asked about the notebook
      }
      this._channel.deliver(data); // held for the chat UI until it listens
      if (!answered && data.type === 'reply' && data.id === PROBE_ID) {
        answered = true;
        this._onProbeReply(data);
      }
    };
    await subshellReady(this.kernel, comm);
    if (this._comm !== comm) {
      return;
    }
    this._slowTimer = window.setTimeout(() => {
      if (this._comm === comm && !answered) {
        this._setState({ kind: 'slow' });
      }
    }, SLOW_AFTER);
    try {
      comm.open({ type: 'request', id: PROBE_ID, action: 'state' });
      this._opened = true;
    } catch (error) {
      this._comm = null;
      this._setState({ kind: 'failed', message: `Cannot talk to this kernel: ${error}` });
    }
  }

  /** Run `%load_ext ancia_jupyter` in the kernel (silently, outside the history), then connect. */
  async load(): Promise<void> {
    const attempt = ++this._attempt;
    this._closeComm();
    this._setState({ kind: 'loading' });
    let reply: KernelMessage.IExecuteReplyMsg;
    try {
      const future = this.kernel.requestExecute({ code: LOAD_CODE, silent: true, store_history: false });
      reply = await future.done;
    } catch (error) {
      if (this._current(attempt)) {
        this._setState({ kind: 'failed', message: `Could not load Ancia: ${error}` });
      }
      return;
    }
    if (!this._current(attempt)) {
      return;
    }
    const content = reply.content;
    if (content.status === 'error') {
      this._setState({ kind: 'failed', message: loadError(content.ename, content.evalue) });
      return;
    }
    if (content.status !== 'ok') {
      this._setState({ kind: 'failed', message: 'Loading Ancia was interrupted.' });
      return;
    }
    await this.connect();
  }

  /** Close the comm (the kernel's session for this sidebar ends) without disposing the link. */
  disconnect(message?: LinkState): void {
    this._attempt++;
    this._closeComm();
    if (message) {
      this._setState(message);
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._attempt++;
    this.kernel.removeCommTarget(LOADED_TARGET, this._onAnnounce);
    this._closeComm();
    this._channel.dispose();
    Signal.clearData(this);
  }

  /**
   * `register_comm_target()` in the kernel opens and closes a comm to this target: ancia was just loaded
   * there (by a cell, say). A sidebar that found no ancia, or another version, connects again.
   */
  private _onAnnounce = (comm: Kernel.IComm): void => {
    comm.onClose = () => undefined;
    if (RECONNECT_ON_ANNOUNCE.has(this._state.kind)) {
      void this.connect();
    }
  };

  private _onProbeReply(data: Message): void {
    if (data.ok !== true) {
      this._closeComm();
      this._setState({ kind: 'failed', message: String(data.error ?? 'The kernel refused the sidebar.') });
      return;
    }
    const snapshot = (data.data ?? {}) as Message;
    const kernelVersion = typeof snapshot.version === 'string' ? snapshot.version : 'unknown';
    if (kernelVersion !== this.version) {
      this._closeComm();
      this._setState({ kind: 'mismatch', kernelVersion, sidebarVersion: this.version });
      return;
    }
    this._clearSlowTimer();
    this._setState({ kind: 'connected' }); // the chat UI mounts now and gets the reply as its snapshot
    this._bridge.announce();
  }

  private _current(attempt: number): boolean {
    return !this._isDisposed && attempt === this._attempt;
  }

  /** Close the comm, if any; the next one waits until it and its subshell are gone (`comm-close.ts`). */
  private _closeComm(): void {
    this._clearSlowTimer();
    this._channel.drop();
    const comm = this._comm;
    const opened = this._opened;
    this._comm = null;
    this._opened = false;
    if (comm) {
      this._closed = closeComm(this.kernel, comm, opened);
    }
  }

  private _clearSlowTimer(): void {
    window.clearTimeout(this._slowTimer);
    this._slowTimer = 0;
  }

  private _setState(state: LinkState): void {
    if (this._isDisposed) {
      return;
    }
    this._state = state;
    this._stateChanged.emit(state);
  }

  private _attempt = 0;
  private _bridge: NotebookBridge;
  private _channel: LinkChannel;
  private _closed: Promise<void> = Promise.resolve();
  private _comm: Kernel.IComm | null = null;
  private _isDisposed = false;
  private _opened = false;
  private _slowTimer = 0;
  private _state: LinkState = { kind: 'connecting' };
  private _stateChanged = new Signal<this, LinkState>(this);
}
