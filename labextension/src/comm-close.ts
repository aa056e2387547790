import { Kernel } from '@jupyterlab/services';
import { PromiseDelegate } from '@lumino/coreutils';

/** How long the kernel has to close a comm the sidebar leaves before the sidebar closes it (ms). */
const CLOSE_WAIT = 2000;

/** How long to wait for a comm subshell before going through the main shell (ms). */
const SUBSHELL_WAIT = 5000;

function subshellStarted(comm: Kernel.IComm): Promise<void> | undefined {
  return (comm as unknown as { subshellStarted?: Promise<void> }).subshellStarted;
}

export function delay(ms: number): Promise<void> {
  return new Promise(resolve => window.setTimeout(resolve, ms));
}

/**
 * With comms over subshells (JupyterLab's default when the kernel supports them), wait for this comm's
 * subshell so that the open and every later message go the same way, and the chat answers while a cell
 * runs.
 */
export async function subshellReady(kernel: Kernel.IKernelConnection, comm: Kernel.IComm): Promise<void> {
  const started = subshellStarted(comm);
  if (!started || !kernel.supportsSubshells || comm.commsOverSubshells === 'disabled') {
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

/**
 * Close a comm; the promise settles when the comm and its subshell are gone, and a new comm may open.
 *
 * An `opened` comm is asked to close from the kernel's side (`{type: "close"}`): JupyterLab deletes a
 * comm's kernel subshell as soon as the comm is closed, and a `comm_close` sent from here can be dropped
 * with it, leaving the kernel's session open. JupyterLab shares one subshell among the comms of a target,
 * and deletes it once its id is known, so a comm opened before that would be handed a subshell being
 * deleted: the next comm waits for the promise.
 */
export function closeComm(kernel: Kernel.IKernelConnection, comm: Kernel.IComm, opened: boolean): Promise<void> {
  if (comm.isDisposed) {
    return Promise.resolve();
  }
  const started = subshellStarted(comm);
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
  const subshell = started && kernel.supportsSubshells;
  return gone.promise
    .then(() => (subshell ? Promise.race([started.catch(() => undefined), delay(SUBSHELL_WAIT)]) : undefined))
    .then(() => delay(0));
}
