import { SidebarState } from './link-state';

/** What the status area's buttons do. */
export interface IStatusActions {
  /** Run `%load_ext ancia_jupyter` in the kernel, then connect. */
  load(): void;
  /** Connect again. */
  retry(): void;
}

/** The status area's contents for a state without a chat: what is happening and what the user can do. */
export function statusView(state: SidebarState, notebook: string, actions: IStatusActions): HTMLElement[] {
  const load = () => button('Load Ancia in this kernel', 'jp-mod-accept', actions.load);
  const retry = (label: string) => button(label, 'jp-mod-reject', actions.retry);
  switch (state.kind) {
    case 'connected':
      return [];
    case 'no-notebook':
      return [
        paragraph(
          "Open a notebook to chat with Ancia. The chat runs in the notebook's kernel: " +
            'the same chats, models and settings as %ancia there.'
        )
      ];
    case 'no-kernel':
      return [paragraph(`${notebook} has no kernel. Select a Python kernel to chat with Ancia.`)];
    case 'connecting':
      return [paragraph(`Connecting to the kernel of ${notebook}…`)];
    case 'slow':
      return [
        paragraph('The kernel has not answered yet; it may be busy running a cell.'),
        row(load(), retry('Retry'))
      ];
    case 'not-loaded':
      return [
        paragraph(
          state.unloaded ? 'Ancia was unloaded from this kernel.' : `Ancia is not loaded in the kernel of ${notebook}.`
        ),
        row(load())
      ];
    case 'loading':
      return [paragraph('Loading Ancia in the kernel…')];
    case 'failed':
      return [paragraph(state.message, 'jp-AnciaSidebar-error'), row(retry('Try again'), load())];
    case 'mismatch':
      return [
        paragraph(
          `Version mismatch: this sidebar is Ancia ${state.sidebarVersion}, but the kernel runs ` +
            `ancia-jupyter ${state.kernelVersion}.`,
          'jp-AnciaSidebar-error'
        ),
        paragraph(
          `Install the same version for JupyterLab and in the kernel's environment ` +
            `(pip install ancia-jupyter==${state.sidebarVersion}), restart the kernel and reload this page.`
        ),
        row(retry('Try again'))
      ];
    case 'unsupported':
      return [paragraph(`Ancia needs a Python kernel; the kernel of ${notebook} runs ${state.language}.`)];
    case 'restarting':
      return [paragraph('The kernel is restarting…')];
    case 'dead':
      return [paragraph('The kernel is not running. Restart it to chat with Ancia.')];
  }
}

function row(...buttons: HTMLButtonElement[]): HTMLElement {
  const div = document.createElement('div');
  div.className = 'jp-AnciaSidebar-actions';
  div.append(...buttons);
  return div;
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
