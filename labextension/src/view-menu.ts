import { JupyterFrontEnd } from '@jupyterlab/application';
import { Widget } from '@lumino/widgets';

import { CommandIDs } from './tokens';

/** A shell whose left area can be folded away: JupyterLab's and Notebook 7's both can. */
interface ICollapsibleShell {
  collapseLeft?: () => void;
}

/**
 * "Ancia Chat" in the View menu (schema/sidebar.json puts it there), in JupyterLab and in Notebook 7, where the
 * left area has no tab bar to click: it shows the sidebar, ticked while it is in view, and hides it again.
 */
export function addViewMenuCommand(app: JupyterFrontEnd, sidebar: Widget & { open(): void }): void {
  app.commands.addCommand(CommandIDs.toggle, {
    label: 'Ancia Chat',
    caption: 'Show or hide the Ancia chat in the left sidebar',
    isToggleable: true,
    isToggled: () => sidebar.isVisible,
    execute: () => {
      if (sidebar.isVisible) {
        (app.shell as unknown as ICollapsibleShell).collapseLeft?.();
      } else {
        sidebar.open();
      }
    }
  });
}
