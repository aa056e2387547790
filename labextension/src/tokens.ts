import { Token } from '@lumino/coreutils';

/** Command ids. */
export namespace CommandIDs {
  export const open = 'ancia:open';
  export const sendCell = 'ancia:send-cell';
  export const toggle = 'ancia:toggle';
}

/** The Ancia sidebar, for plugins that put text in front of the user (the cell context menu). */
export interface IAnciaSidebar {
  /** The sidebar's widget id in the shell. */
  readonly id: string;
  /** Show the sidebar and focus the message box. */
  open(): void;
  /**
   * Put `text` in the message box (replacing what is there) without sending it. When the chat is not
   * connected yet, the text waits and is put there once it is.
   */
  setInput(text: string): void;
}

export const IAnciaSidebar = new Token<IAnciaSidebar>(
  'ancia-jupyter:IAnciaSidebar',
  'The Ancia chat sidebar: open it, or put a question in its message box.'
);
