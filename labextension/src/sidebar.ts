import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { type IChatView, mountChat } from '../../ancia_jupyter/notebook/static/chat-ui.js';
import { KernelFollower } from './kernel-follower';
import { SidebarState } from './link-state';
import { statusView } from './status-view';
import { IAnciaSidebar } from './tokens';

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
 * The Ancia chat in JupyterLab's left sidebar: a header naming the notebook, a status area while there is
 * no chat, and the chat UI of the in-notebook panel once the kernel of the notebook in focus answers
 * (`KernelFollower` follows the focus, kernel changes and restarts).
 */
export class AnciaSidebar extends Widget implements IAnciaSidebar {
  constructor(options: AnciaSidebar.IOptions) {
    super();
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

    this._follower = new KernelFollower(options.tracker, options.version);
    this._follower.stateChanged.connect((_, state) => this._render(state), this);
    this._follower.contextChanged.connect(this._updateHeader, this);
    this._updateHeader();
    this._render(this._follower.state);
    this._follower.start();
  }

  /** The notebook the sidebar is bound to, if any. */
  get notebook(): NotebookPanel | null {
    return this._follower.panel;
  }

  open(): void {
    this._reveal();
    requestAnimationFrame(() => this._chat?.view.focus());
  }

  setInput(text: string): void {
    this._pendingInput = text;
    this._applyInput();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._follower.shown();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._follower.dispose();
    this._unmountChat();
    super.dispose();
  }

  private _updateHeader(): void {
    const panel = this._follower.panel;
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
    const panel = this._follower.panel;
    const notebook = panel ? PathExt.basename(panel.context.localPath) : '';
    this._status.replaceChildren(
      ...statusView(state, notebook, {
        load: () => void this._follower.link?.load(),
        retry: () => void this._follower.link?.connect()
      })
    );
  }

  /** The chat UI on the link's channel; it starts from the snapshot the link was answered with. */
  private _mountChat(): void {
    const link = this._follower.link;
    if (this._chat || !link) {
      return;
    }
    const element = document.createElement('div');
    element.className = 'jp-AnciaSidebar-chat';
    this._chatHost.appendChild(element);
    let view: IChatView;
    try {
      view = mountChat(element, link.channel, { height: '100%' });
    } catch (error) {
      element.remove();
      link.disconnect({ kind: 'failed', message: `The chat could not start: ${error}` });
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

  private _chat: { element: HTMLElement; view: IChatView } | null = null;
  private _chatHost: HTMLElement;
  private _context: HTMLElement;
  private _follower: KernelFollower;
  private _pendingInput: string | null = null;
  private _reveal: () => void;
  private _status: HTMLElement;
}
