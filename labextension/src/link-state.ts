/** What a sidebar's link to one kernel can be doing, as the sidebar shows it. */
export type LinkState =
  | { kind: 'connecting' }
  | { kind: 'slow' }
  | { kind: 'not-loaded'; unloaded: boolean }
  | { kind: 'loading' }
  | { kind: 'failed'; message: string }
  | { kind: 'mismatch'; kernelVersion: string; sidebarVersion: string }
  | { kind: 'unsupported'; language: string }
  | { kind: 'connected' };

/** What the sidebar shows: the link's state, or why there is no link to a kernel. */
export type SidebarState =
  | LinkState
  | { kind: 'no-notebook' }
  | { kind: 'no-kernel' }
  | { kind: 'restarting' }
  | { kind: 'dead' };

/** The one line shown when `%load_ext ancia_jupyter` failed in the kernel. */
export function loadError(ename: string, evalue: string): string {
  if (ename === 'ModuleNotFoundError' || ename === 'ImportError') {
    return (
      `${ename}: ${evalue}. Install ancia-jupyter in this kernel's environment ` +
      '(pip install ancia-jupyter), then try again.'
    );
  }
  return `Could not load Ancia: ${ename}: ${evalue}`;
}
