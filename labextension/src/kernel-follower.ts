import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { KernelLink } from './connection';
import { SidebarState } from './link-state';

/** Kernel statuses after which the kernel is a new process: its comms are gone. */
const GONE = new Set<Kernel.Status>(['restarting', 'autorestarting', 'dead', 'terminating']);

/**
 * Follows the notebook in focus and its kernel: kernel changes, restarts and deaths. It keeps one
 * `KernelLink` to the kernel of that notebook and says what the sidebar should show.
 */
export class KernelFollower implements IDisposable {
  constructor(
    private readonly _tracker: INotebookTracker,
    private readonly _version: string
  ) {
    this._tracker.currentChanged.connect((_, panel) => this._bind(panel), this);
  }

  /** The notebook followed, if any. */
  get panel(): NotebookPanel | null {
    return this._panel;
  }

  /** The link to its kernel, while there is one. */
  get link(): KernelLink | null {
    return this._link;
  }

  get state(): SidebarState {
    return this._state;
  }

  /** What the sidebar shows changed. */
  get stateChanged(): ISignal<this, SidebarState> {
    return this._stateChanged;
  }

  /** The notebook followed, its path or its kernel's name changed (the sidebar's header). */
  get contextChanged(): ISignal<this, void> {
    return this._contextChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Start following the notebook in focus. No comm is opened in the kernel of every notebook opened: the
   * first connection waits until the sidebar is shown (`shown`).
   */
  start(): void {
    this._bind(this._tracker.currentWidget);
  }

  /** The sidebar is shown: connect to the kernel followed, now or once it is ready. */
  shown(): void {
    if (this._shown) {
      return;
    }
    this._shown = true;
    const context = this._panel?.sessionContext;
    if (context?.isReady) {
      this._setKernel(context.session?.kernel ?? null);
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._bind(null);
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private _bind(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    const old = this._panel;
    if (old) {
      old.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
      old.sessionContext.statusChanged.disconnect(this._onStatus, this);
      old.sessionContext.propertyChanged.disconnect(this._onContext, this);
      old.context.pathChanged.disconnect(this._onContext, this);
    }
    this._panel = panel;
    this._setKernel(null);
    this._onContext();
    if (!panel) {
      this._setState({ kind: 'no-notebook' });
      return;
    }
    panel.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    panel.sessionContext.statusChanged.connect(this._onStatus, this);
    panel.sessionContext.propertyChanged.connect(this._onContext, this);
    panel.context.pathChanged.connect(this._onContext, this);
    this._setState({ kind: 'connecting' });
    void panel.sessionContext.ready.then(() => {
      if (this._panel === panel) {
        this._setKernel(panel.sessionContext.session?.kernel ?? null);
      }
    });
  }

  private _onContext(): void {
    if (!this._isDisposed) {
      this._contextChanged.emit();
    }
  }

  private _onKernelChanged(): void {
    this._onContext();
    const context = this._panel?.sessionContext;
    if (context && (context.isReady || !context.session?.kernel)) {
      this._setKernel(context.session?.kernel ?? null);
    }
  }

  private _onStatus(_: unknown, status: Kernel.Status): void {
    const link = this._link;
    if (!link) {
      return;
    }
    if (GONE.has(status)) {
      this._restarting = status !== 'dead' && status !== 'terminating';
      link.disconnect();
      this._setState({ kind: this._restarting ? 'restarting' : 'dead' });
    } else if (status === 'idle' && this._restarting) {
      this._restarting = false;
      void link.connect();
    }
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    if (this._link && this._link.kernel === kernel) {
      return;
    }
    this._link?.dispose();
    this._link = null;
    this._restarting = false;
    if (!this._panel) {
      return;
    }
    if (!kernel) {
      this._setState({ kind: 'no-kernel' });
      return;
    }
    if (!this._shown) {
      this._setState({ kind: 'connecting' });
      return;
    }
    const link = new KernelLink(kernel, this._version);
    this._link = link;
    link.stateChanged.connect((_, state) => this._setState(state), this);
    void link.connect();
  }

  private _setState(state: SidebarState): void {
    if (this._isDisposed) {
      return;
    }
    this._state = state;
    this._stateChanged.emit(state);
  }

  private _contextChanged = new Signal<this, void>(this);
  private _isDisposed = false;
  private _link: KernelLink | null = null;
  private _panel: NotebookPanel | null = null;
  private _restarting = false;
  private _shown = false;
  private _state: SidebarState = { kind: 'no-notebook' };
  private _stateChanged = new Signal<this, SidebarState>(this);
}
