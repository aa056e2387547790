import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { type IChatView, mountChat } from '../../ancia_jupyter/notebook/static/chat-ui.js';
import { KernelLink, LinkState } from './connection';
import { IAnciaSidebar } from './tokens';

/** What the sidebar shows when no chat is mounted. */
type SidebarState =
  | LinkState
  | { kind: 'no-notebook' }
  | { kind: 'no-kernel' }
  | { kind: 'restarting' }
  | { kind: 'dead' };

/** Kernel statuses after which the kernel is a new process: its comms are gone. */
const GONE = new Set<Kernel.Status>(['restarting', 'autorestarting', 'dead', 'terminating']);

export namespace AnciaSidebar {
  export interface IOptions {
    tracker: INotebookTracker;
    /** The front end's version (package.json); a kernel running another version is refused. */
    version: string;
    /** Show the sidebar in the shell. */
    reveal: () => void;
  }
}

/**
 * The Ancia chat in JupyterLab's left sidebar: the chat UI of the in-notebook panel, connected over a
 * comm to the kernel of the notebook in focus. It follows the focus, kernel changes and restarts.
 */
export class AnciaSidebar extends Widget implements IAnciaSidebar {
  constructor(options: AnciaSidebar.IOptions) {
    super();
    this._tracker = options.tracker;
    this._version = options.version;
    this._reveal = options.reveal;
    this.addClass('jp-AnciaSidebar');

    const header = document.createElement('header');
    header.className = 'jp-AnciaSidebar-header';
    const title = document.createElement('h2');
    title.className = 'jp-AnciaSidebar-title';
    title.textContent = 'Ancia';
    this._context = document.createElement('div');
    this._context.className = 'jp-AnciaSidebar-context';
    header.append(title, this._context);

    this._status = document.createElement('div');
    this._status.className = 'jp-AnciaSidebar-status';
    this._status.setAttribute('role', 'status');

    this._chatHost = document.createElement('div');
    this._chatHost.className = 'jp-AnciaSidebar-chatHost';

    this.node.append(header, this._status, this._chatHost);

    this._tracker.currentChanged.connect((_, panel) => this._bind(panel), this);
    this._updateHeader();
    this._render({ kind: 'no-notebook' });
    this._bind(this._tracker.currentWidget);
  }

  /** The notebook the sidebar is bound to, if any. */
  get notebook(): NotebookPanel | null {
    return this._panel;
  }

  open(): void {
    this._reveal();
    this._focusInput();
  }

  setInput(text: string): void {
    this._pendingInput = text;
    this._applyInput();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (!this._shown) {
      this._shown = true;
      const context = this._panel?.sessionContext;
      if (context?.isReady) {
        this._setKernel(context.session?.kernel ?? null);
      }
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._bind(null);
    super.dispose();
  }

  // -- following the notebook in focus --------------------------------------------------------------

  private _bind(panel: NotebookPanel | null): void {
    if (panel === this._panel) {
      return;
    }
    const old = this._panel;
    if (old) {
      old.sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
      old.sessionContext.statusChanged.disconnect(this._onStatus, this);
      old.sessionContext.propertyChanged.disconnect(this._updateHeader, this);
      old.context.pathChanged.disconnect(this._updateHeader, this);
    }
    this._panel = panel;
    this._setKernel(null);
    this._updateHeader();
    if (!panel) {
      this._render({ kind: 'no-notebook' });
      return;
    }
    panel.sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    panel.sessionContext.statusChanged.connect(this._onStatus, this);
    panel.sessionContext.propertyChanged.connect(this._updateHeader, this);
    panel.context.pathChanged.connect(this._updateHeader, this);
    this._render({ kind: 'connecting' });
    void panel.sessionContext.ready.then(() => {
      if (this._panel === panel) {
        this._setKernel(panel.sessionContext.session?.kernel ?? null);
      }
    });
  }

  private _onKernelChanged(): void {
    this._updateHeader();
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
      this._unmountChat();
      link.disconnect();
      this._render({ kind: this._restarting ? 'restarting' : 'dead' });
    } else if (status === 'idle' && this._restarting) {
      this._restarting = false;
      void link.connect();
    }
  }

  private _setKernel(kernel: Kernel.IKernelConnection | null): void {
    if (this._link && this._link.kernel === kernel) {
      return;
    }
    this._unmountChat();
    this._link?.dispose();
    this._link = null;
    this._restarting = false;
    if (!this._panel) {
      return;
    }
    if (!kernel) {
      this._render({ kind: 'no-kernel' });
      return;
    }
    if (!this._shown) {
      // No comm in the kernel of every notebook opened: the first connection waits for the sidebar.
      this._render({ kind: 'connecting' });
      return;
    }
    const link = new KernelLink(kernel, this._version);
    this._link = link;
    link.stateChanged.connect((_, state) => this._render(state), this);
    void link.connect();
  }

  // -- what is shown ----------------------------------------------------------------------------------

  private _updateHeader(): void {
    const panel = this._panel;
    if (!panel) {
      this._context.textContent = 'No notebook';
      this._context.title = '';
      return;
    }
    const name = PathExt.basename(panel.context.localPath);
    const kernel = panel.sessionContext.kernelDisplayName;
    this._context.textContent = kernel ? `${name} · ${kernel}` : name;
    this._context.title = `Chatting with the kernel of ${panel.context.path}`;
  }

  private _render(state: SidebarState): void {
    this.node.dataset.state = state.kind;
    if (state.kind === 'connected') {
      this._status.replaceChildren();
      this._status.hidden = true;
      this._mountChat();
      return;
    }
    this._unmountChat();
    this._status.hidden = false;
    const notebook = this._panel ? PathExt.basename(this._panel.context.localPath) : '';
    const parts: (string | HTMLElement)[] = [];
    switch (state.kind) {
      case 'no-notebook':
        parts.push(
          paragraph(
            "Open a notebook to chat with Ancia. The chat runs in the notebook's kernel: " +
              'the same chats, models and settings as %ancia there.'
          )
        );
        break;
      case 'no-kernel':
        parts.push(paragraph(`${notebook} has no kernel. Select a Python kernel to chat with Ancia.`));
        break;
      case 'connecting':
        parts.push(paragraph(`Connecting to the kernel of ${notebook}…`));
        break;
      case 'slow':
        parts.push(
          paragraph('The kernel has not answered yet; it may be busy running a cell.'),
          this._actions(this._loadButton(), this._retryButton('Retry'))
        );
        break;
      case 'not-loaded':
        parts.push(
          paragraph(
            state.unloaded
              ? 'Ancia was unloaded from this kernel.'
              : `Ancia is not loaded in the kernel of ${notebook}.`
          ),
          this._actions(this._loadButton())
        );
        break;
      case 'loading':
        parts.push(paragraph('Loading Ancia in the kernel…'));
        break;
      case 'failed':
        parts.push(
          paragraph(state.message, 'jp-AnciaSidebar-error'),
          this._actions(this._retryButton('Try again'), this._loadButton())
        );
        break;
      case 'mismatch':
        parts.push(
          paragraph(
            `Version mismatch: this sidebar is Ancia ${state.sidebarVersion}, but the kernel runs ` +
              `ancia-jupyter ${state.kernelVersion}.`,
            'jp-AnciaSidebar-error'
          ),
          paragraph(
            `Install the same version for JupyterLab and in the kernel's environment ` +
              `(pip install ancia-jupyter==${state.sidebarVersion}), restart the kernel and reload this page.`
          ),
          this._actions(this._retryButton('Try again'))
        );
        break;
      case 'unsupported':
        parts.push(
          paragraph(`Ancia needs a Python kernel; the kernel of ${notebook} runs ${state.language}.`)
        );
        break;
      case 'restarting':
        parts.push(paragraph('The kernel is restarting…'));
        break;
      case 'dead':
        parts.push(paragraph('The kernel is not running. Restart it to chat with Ancia.'));
        break;
    }
    this._status.replaceChildren(...parts);
  }

  private _actions(...buttons: HTMLButtonElement[]): HTMLElement {
    const div = document.createElement('div');
    div.className = 'jp-AnciaSidebar-actions';
    div.append(...buttons);
    return div;
  }

  private _loadButton(): HTMLButtonElement {
    return button('Load Ancia in this kernel', 'jp-mod-accept', () => void this._link?.load());
  }

  private _retryButton(label: string): HTMLButtonElement {
    return button(label, 'jp-mod-reject', () => void this._link?.connect());
  }

  // -- the chat UI ------------------------------------------------------------------------------------

  private _mountChat(): void {
    if (this._chat || !this._link) {
      return;
    }
    const element = document.createElement('div');
    element.className = 'jp-AnciaSidebar-chat';
    this._chatHost.appendChild(element);
    let view: IChatView;
    try {
      view = mountChat(element, this._link.channel, { height: '100%' });
    } catch (error) {
      element.remove();
      this._link.disconnect({ kind: 'failed', message: `The chat could not start: ${error}` });
      return;
    }
    this._chat = { element, view };
    this._applyInput();
  }

  private _unmountChat(): void {
    const chat = this._chat;
    if (!chat) {
      return;
    }
    this._chat = null;
    try {
      chat.view.cleanup();
    } finally {
      chat.element.remove();
    }
  }

  /** Hand the text waiting for the message box to the chat, once there is one. */
  private _applyInput(): void {
    const text = this._pendingInput;
    if (text !== null && this._chat) {
      this._pendingInput = null;
      this._chat.view.setInput(text);
    }
  }

  private _focusInput(): void {
    requestAnimationFrame(() => this._chat?.view.focus());
  }

  private _chat: { element: HTMLElement; view: IChatView } | null = null;
  private _chatHost: HTMLElement;
  private _context: HTMLElement;
  private _link: KernelLink | null = null;
  private _panel: NotebookPanel | null = null;
  private _pendingInput: string | null = null;
  private _restarting = false;
  private _shown = false;
  private _reveal: () => void;
  private _status: HTMLElement;
  private _tracker: INotebookTracker;
  private _version: string;
}

function paragraph(text: string, className = ''): HTMLElement {
  const p = document.createElement('p');
  if (className) {
    p.className = className;
  }
  p.textContent = text;
  return p;
}

function button(label: string, kind: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `jp-Button jp-mod-styled ${kind}`;
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}
