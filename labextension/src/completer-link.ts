import { Kernel, KernelMessage } from '@jupyterlab/services';
import { PromiseDelegate } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';

import { closeComm, subshellReady } from './comm-close';

/** The comm target `ancia_jupyter.notebook.completion_comm` registers in the kernel. */
export const COMPLETE_TARGET = 'ancia.complete';

/** The front end's target the kernel opens when ancia is loaded there (the sidebar listens to it). */
const LOADED_TARGET = 'ancia.loaded';

/** How long the kernel has to say it is ready on a new comm (ms). */
const READY_WAIT = 5000;

/** After a kernel without ancia (or of another version, or too busy to answer), when to try again (ms). */
const RETRY_AFTER = 20000;

/** Kernel statuses after which the kernel is a new process: its comms are gone. */
const GONE = new Set<Kernel.Status>(['restarting', 'autorestarting', 'dead', 'terminating']);

/** What one completion is asked for (`docs/panel-protocol.md`, "Inline completion"). */
export interface ICompletionRequest {
  prefix: string;
  suffix: string;
  cells: string[];
  cell_index: number;
  mode: 'line' | 'block';
}

type Reply = { type?: string; id?: number; text?: string; reason?: string; version?: string };

/** One suggestion as the kernel streams it: the text so far, each time it changes, until it ends. */
export class SuggestionStream {
  constructor(
    readonly id: number,
    private readonly _cancel: () => void
  ) {}

  get text(): string {
    return this._text;
  }

  get ended(): boolean {
    return this._reason !== null;
  }

  /** Why it ended (`line`, `block`, `stop`, `busy`, `cancelled`, `error`, …), or null while it streams. */
  get reason(): string | null {
    return this._reason;
  }

  /** Bumped on every change: `changedSince(version)` waits for the next one. */
  get version(): number {
    return this._version;
  }

  update(text: string): void {
    if (!this.ended && text !== this._text) {
      this._text = text;
      this._bump();
    }
  }

  end(text: string, reason: string): void {
    if (!this.ended) {
      this._text = text;
      this._reason = reason;
      this._bump();
    }
  }

  /** Stop it in the kernel (within a token) and here; nothing more is shown. */
  cancel(): void {
    if (!this.ended) {
      this._cancel();
      this.end('', 'cancelled');
    }
  }

  /** Resolves once the stream has changed after `version`, or after `ms` (then with false). */
  changedSince(version: number, ms = 0): Promise<boolean> {
    if (this._version > version) {
      return Promise.resolve(true);
    }
    const changed = new PromiseDelegate<boolean>();
    this._waiters.push(() => changed.resolve(true));
    if (ms > 0) {
      window.setTimeout(() => changed.resolve(false), ms);
    }
    return changed.promise;
  }

  /** Resolves with whether there is text to show, once there is or the stream ended, or after `ms`. */
  async firstText(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this._text && !this.ended) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.changedSince(this._version, left))) {
        return false;
      }
    }
    return this._text !== '';
  }

  private _bump(): void {
    this._version++;
    const waiters = this._waiters;
    this._waiters = [];
    waiters.forEach(wake => wake());
  }

  private _text = '';
  private _reason: string | null = null;
  private _version = 0;
  private _waiters: (() => void)[] = [];
}

/**
 * The editor's link to one kernel for inline completion: one `ancia.complete` comm, opened on the first
 * request. A kernel without ancia (or of another version) is tried again later, or at once when the kernel
 * announces that ancia was loaded. Nothing here ever throws into the editor: no comm means no suggestion.
 */
export class CompletionLink implements IDisposable {
  constructor(
    readonly kernel: Kernel.IKernelConnection,
    readonly version: string
  ) {
    kernel.iopubMessage.connect(this._onIopub, this);
    kernel.statusChanged.connect(this._onStatus, this);
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Ask for a suggestion; null when the kernel cannot give one now. */
  async complete(request: ICompletionRequest): Promise<SuggestionStream | null> {
    const comm = await this._ready();
    if (!comm || comm !== this._comm) {
      return null;
    }
    const id = ++this._nextId;
    const stream = new SuggestionStream(id, () => this._send({ type: 'cancel', id }));
    this._streams.set(id, stream);
    if (!this._send({ type: 'complete', id, ...request })) {
      this._streams.delete(id);
      return null;
    }
    return stream;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.kernel.iopubMessage.disconnect(this._onIopub, this);
    this.kernel.statusChanged.disconnect(this._onStatus, this);
    const comm = this._comm;
    this._reset();
    if (comm && !this.kernel.isDisposed) {
      void closeComm(this.kernel, comm, true);
    }
  }

  private _send(msg: Record<string, unknown>): boolean {
    try {
      this._comm?.send(msg as never);
      return this._comm !== null;
    } catch {
      return false;
    }
  }

  private _ready(): Promise<Kernel.IComm | null> {
    if (this._isDisposed || this.kernel.isDisposed) {
      return Promise.resolve(null);
    }
    if (this._comm) {
      return Promise.resolve(this._comm);
    }
    if (!this._opening) {
      if (Date.now() < this._retryAt) {
        return Promise.resolve(null);
      }
      this._opening = this._open().finally(() => {
        this._opening = null;
      });
    }
    return this._opening;
  }

  private async _open(): Promise<Kernel.IComm | null> {
    let comm: Kernel.IComm;
    try {
      comm = this.kernel.createComm(COMPLETE_TARGET);
    } catch {
      this._retryAt = Date.now() + RETRY_AFTER;
      return null;
    }
    const ready = new PromiseDelegate<boolean>();
    comm.onClose = () => {
      ready.resolve(false);
      if (this._comm === comm) {
        this._reset();
      }
    };
    comm.onMsg = msg => {
      const data = msg.content.data as Reply;
      if (data.type === 'ready') {
        if (data.version !== this.version) {
          console.warn(`Ancia: no inline completion from a kernel running ancia-jupyter ${data.version}; ` +
            `this front end is ${this.version}.`);
        }
        ready.resolve(data.version === this.version);
      } else if (this._comm === comm) {
        this._onReply(data);
      }
    };
    await subshellReady(this.kernel, comm);
    let opened = false;
    try {
      comm.open({});
      opened = true;
    } catch {
      ready.resolve(false);
    }
    const timer = window.setTimeout(() => ready.resolve(false), READY_WAIT);
    const ok = await ready.promise;
    window.clearTimeout(timer);
    if (!ok || this._isDisposed) {
      this._retryAt = Date.now() + RETRY_AFTER;
      if (!comm.isDisposed) {
        void closeComm(this.kernel, comm, opened);
      }
      return null;
    }
    this._comm = comm;
    return comm;
  }

  private _onReply(data: Reply): void {
    const stream = typeof data.id === 'number' ? this._streams.get(data.id) : undefined;
    if (!stream) {
      return;
    }
    if (data.type === 'chunk') {
      stream.update(String(data.text ?? ''));
    } else if (data.type === 'done') {
      this._streams.delete(stream.id);
      stream.end(String(data.text ?? ''), String(data.reason ?? 'stop'));
    }
  }

  /** The comm is gone (closed, or the kernel restarted): every suggestion in flight ends empty. */
  private _reset(): void {
    this._comm = null;
    for (const stream of this._streams.values()) {
      stream.end('', 'closed');
    }
    this._streams.clear();
  }

  private _onIopub(_: unknown, msg: KernelMessage.IIOPubMessage): void {
    if (msg.header.msg_type === 'comm_open' &&
        (msg as KernelMessage.ICommOpenMsg<'iopub'>).content.target_name === LOADED_TARGET) {
      this._retryAt = 0; // ancia was just loaded there: the next request opens the comm
    }
  }

  private _onStatus(_: unknown, status: Kernel.Status): void {
    if (GONE.has(status)) {
      this._reset();
      this._retryAt = 0;
    }
  }

  private _comm: Kernel.IComm | null = null;
  private _isDisposed = false;
  private _nextId = 0;
  private _opening: Promise<Kernel.IComm | null> | null = null;
  private _retryAt = 0;
  private _streams = new Map<number, SuggestionStream>();
}
