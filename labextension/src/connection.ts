import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject, PromiseDelegate } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import type { IChannel } from '../../ancia_jupyter/notebook/static/chat-ui.js';

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

/** How long the kernel has to close a comm the sidebar leaves before the sidebar closes it (ms). */
const CLOSE_WAIT = 2000;

/** How long to wait for a comm subshell before going through the main shell (ms). */
const SUBSHELL_WAIT = 5000;

/** The states in which the kernel's announcement that ancia was loaded makes the sidebar connect. */
const RECONNECT_ON_ANNOUNCE = new Set(['not-loaded', 'failed', 'slow', 'mismatch']);

export type Message = Record<string, unknown>;

export type LinkState =
  | { kind: 'connecting' }
  | { kind: 'slow' }
  | { kind: 'not-loaded'; unloaded: boolean }
  | { kind: 'loading' }
  | { kind: 'failed'; message: string }
  | { kind: 'mismatch'; kernelVersion: string; sidebarVersion: string }
  | { kind: 'unsupported'; language: string }
  | { kind: 'connected' };

/**
 * The sidebar's link to one kernel: one `ancia` comm at a time, opened with a `state` request whose
 * reply says whether ancia is loaded there and which version it is. Only a kernel running the same
 * version as this front end is handed to the chat UI.
 */
export class KernelLink implements IDisposable {
  constructor(
    readonly kernel: Kernel.IKernelConnection,
    readonly version: string
  ) {
    this.channel = {
      send: (msg: Message) => {
        if (!this._comm || this._state.kind !== 'connected') {
          throw new Error('Ancia is not connected to the kernel.');
        }
        this._comm.send(msg as JSONObject);
      },
      onMessage: (callback: (msg: Message) => void) => {
        this._listeners.add(callback);
        return () => {
          this._listeners.delete(callback);
        };
      }
    };
    kernel.registerCommTarget(LOADED_TARGET, this._onAnnounce);
  }

  /** The channel the chat UI is given; it carries messages while the state is `connected`. */
  readonly channel: IChannel;

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
    let answered = false;
    comm.onClose = msg => {
      if (this._comm !== comm) {
        return;
      }
      this._comm = null;
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
      if (answered) {
        this._listeners.forEach(listener => listener(data));
      } else if (data.type === 'reply' && data.id === PROBE_ID) {
        answered = true;
        this._onProbeReply(data);
      }
      // Pushes that come before the first reply are dropped: the chat UI asks for the state itself.
    };
    await this._subshellReady(comm);
    if (this._comm !== comm) {
      return;
    }
    const timer = window.setTimeout(() => {
      if (this._comm === comm && !answered) {
        this._setState({ kind: 'slow' });
      }
    }, SLOW_AFTER);
    this._timers.add(timer);
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
      const future = this.kernel.requestExecute({
        code: LOAD_CODE,
        silent: true,
        store_history: false
      });
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
    this._listeners.clear();
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
    this._clearTimers();
    this._setState({ kind: 'connected' });
  }

  /**
   * With comms over subshells (JupyterLab's default when the kernel supports them), wait for this
   * comm's subshell so that the open and every later message go the same way, and the chat answers
   * while a cell runs.
   */
  private async _subshellReady(comm: Kernel.IComm): Promise<void> {
    const started = (comm as unknown as { subshellStarted?: Promise<void> }).subshellStarted;
    if (!started || !this.kernel.supportsSubshells || comm.commsOverSubshells === 'disabled') {
      return;
    }
    let timer = 0;
    const timeout = new Promise<void>(resolve => {
      timer = window.setTimeout(resolve, SUBSHELL_WAIT);
    });
    try {
      await Promise.race([started, timeout]);
    } catch {
      // No subshell: the comm goes through the main shell.
    } finally {
      window.clearTimeout(timer);
    }
  }

  private _current(attempt: number): boolean {
    return !this._isDisposed && attempt === this._attempt;
  }

  /**
   * Close the comm. An open comm is asked to close from the kernel's side (`{type: "close"}`): JupyterLab
   * deletes a comm's kernel subshell as soon as the comm is closed, and a `comm_close` sent from here can
   * be dropped with it, leaving the kernel's session open. JupyterLab shares one subshell among the
   * comms of a target, and deletes it once its id is known, so a comm opened before that would be handed
   * a subshell being deleted: `_closed` settles when the closed comm and its subshell are gone, and
   * `connect` waits for it.
   */
  private _closeComm(): void {
    this._clearTimers();
    const comm = this._comm;
    const opened = this._opened;
    this._comm = null;
    this._opened = false;
    if (!comm || comm.isDisposed) {
      return;
    }
    const started = (comm as unknown as { subshellStarted?: Promise<void> }).subshellStarted;
    const gone = new PromiseDelegate<void>();
    let fallback = 0;
    const close = () => {
      window.clearTimeout(fallback);
      if (!comm.isDisposed) {
        try {
          comm.close();
        } catch {
          comm.dispose();
        }
      }
      gone.resolve();
    };
    comm.onMsg = () => undefined;
    comm.onClose = () => {
      window.clearTimeout(fallback);
      gone.resolve();
    };
    if (opened) {
      try {
        comm.send({ type: 'close' });
        fallback = window.setTimeout(close, CLOSE_WAIT);
      } catch {
        close();
      }
    } else {
      close();
    }
    const subshell = started && this.kernel.supportsSubshells;
    this._closed = gone.promise
      .then(() => (subshell ? Promise.race([started.catch(() => undefined), delay(SUBSHELL_WAIT)]) : undefined))
      .then(() => delay(0));
  }

  private _clearTimers(): void {
    this._timers.forEach(timer => window.clearTimeout(timer));
    this._timers.clear();
  }

  private _setState(state: LinkState): void {
    if (this._isDisposed) {
      return;
    }
    this._state = state;
    this._stateChanged.emit(state);
  }

  private _attempt = 0;
  private _closed: Promise<void> = Promise.resolve();
  private _opened = false;
  private _comm: Kernel.IComm | null = null;
  private _isDisposed = false;
  private _listeners = new Set<(msg: Message) => void>();
  private _state: LinkState = { kind: 'connecting' };
  private _stateChanged = new Signal<this, LinkState>(this);
  private _timers = new Set<number>();
}

function delay(ms: number): Promise<void> {
  return new Promise(resolve => window.setTimeout(resolve, ms));
}

function loadError(ename: string, evalue: string): string {
  if (ename === 'ModuleNotFoundError' || ename === 'ImportError') {
    return (
      `${ename}: ${evalue}. Install ancia-jupyter in this kernel's environment ` +
      '(pip install ancia-jupyter), then try again.'
    );
  }
  return `Could not load Ancia: ${ename}: ${evalue}`;
}
