import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';

import pkg from '../../package.json';
import { completerPlugin } from './completer';
import { setNotebookTracker } from './notebook-bridge';
import { cellQuestion } from './question';
import { anciaIcon } from './icon';
import { AnciaSidebar } from './sidebar';
import { CommandIDs, IAnciaSidebar } from './tokens';
import { addViewMenuCommand } from './view-menu';

export { IAnciaSidebar } from './tokens';

/** The chat in the left sidebar, the "Ancia: Open chat" command and its shortcut (schema/sidebar.json). */
const sidebarPlugin: JupyterFrontEndPlugin<IAnciaSidebar> = {
  id: 'ancia-jupyter:sidebar',
  description: 'The Ancia chat in the left sidebar, bound to the kernel of the notebook in focus.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  provides: IAnciaSidebar,
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): IAnciaSidebar => {
    setNotebookTracker(tracker); // the kernel's notebook tools ask the sidebar's link about these notebooks
    const sidebar = new AnciaSidebar({
      tracker,
      version: pkg.version,
      reveal: () => app.shell.activateById(sidebar.id)
    });
    sidebar.id = 'ancia-sidebar';
    sidebar.title.icon = anciaIcon;
    sidebar.title.caption = 'Ancia';
    app.shell.add(sidebar, 'left', { rank: 600 });
    restorer?.add(sidebar, 'ancia-sidebar');

    app.commands.addCommand(CommandIDs.open, {
      label: 'Ancia: Open chat',
      caption: "Chat with Ancia in the kernel of the notebook in focus",
      icon: anciaIcon,
      execute: () => sidebar.open()
    });
    palette?.addItem({ command: CommandIDs.open, category: 'Ancia' });
    addViewMenuCommand(app, sidebar);
    return sidebar;
  }
};

/** "Send cell to Ancia" in the cell context menu (schema/send-cell.json). */
const sendCellPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ancia-jupyter:send-cell',
  description: 'Puts the active cell (or the selected text) into the Ancia chat as a question.',
  autoStart: true,
  requires: [INotebookTracker, IAnciaSidebar],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, sidebar: IAnciaSidebar): void => {
    app.commands.addCommand(CommandIDs.sendCell, {
      label: 'Send cell to Ancia',
      caption: 'Ask Ancia about the active cell, or about the text selected in it',
      icon: anciaIcon,
      isEnabled: () => tracker.activeCell !== null,
      execute: () => {
        const question = cellQuestion(tracker);
        if (question !== null) {
          sidebar.open();
          sidebar.setInput(question);
        }
      }
    });
  }
};

export default [sidebarPlugin, sendCellPlugin, completerPlugin];
