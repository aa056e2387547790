import { INotebookTracker, NotebookPanel, runCell } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import type { Message } from './channel';

/** The id of the link's request that offers the notebook to the kernel (the link's own ids are negative). */
export const BRIDGE_ID = -2;

/** How much of a cell's source, and of each output, goes back to the kernel (characters). */
const SOURCE_CHARS = 4000;
const OUTPUT_CHARS = 1000;
const RUN_OUTPUT_CHARS = 20000;
const ANSI = new RegExp(String.fromCharCode(27) + '\\[[0-9;]*[A-Za-z]', 'g');

let tracker: INotebookTracker | null = null;

/** The notebooks a bridge may answer for; the sidebar's plugin sets it once (index.ts). */
export function setNotebookTracker(value: INotebookTracker): void {
  tracker = value;
}

interface IOutputJSON {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

/** What the bridge reads of a cell's model beyond `ICellModel`: a code cell's outputs and prompt number. */
interface ICodeModelLike {
  outputs?: { toJSON(): IOutputJSON[] };
  executionCount?: number | null;
}

function text(value: unknown): string {
  return Array.isArray(value) ? value.join('') : typeof value === 'string' ? value : '';
}

function cut(value: string, limit: number): string {
  return value.length <= limit ? value : `${value.slice(0, limit)} […${value.length - limit} more characters]`;
}

/** One output as the kernel's tools read it (docs/panel-protocol.md, "The notebook bridge"). */
function simplify(output: IOutputJSON, limit: number): Message {
  const data = output.data ?? {};
  const mime = Object.keys(data);
  switch (output.output_type) {
    case 'stream':
      return { type: 'stream', name: output.name ?? 'stdout', text: cut(text(output.text), limit) };
    case 'error':
      return {
        type: 'error',
        ename: output.ename ?? '',
        evalue: output.evalue ?? '',
        traceback: (output.traceback ?? []).map(line => line.replace(ANSI, ''))
      };
    case 'execute_result':
      return { type: 'result', text: cut(text(data['text/plain']), limit), mime };
    default: {
      const images = mime.filter(m => m.startsWith('image/'));
      const shown = images.length ? ` [${images.join(', ')} shown in the notebook]` : '';
      return { type: 'display', text: cut(text(data['text/plain']), limit) + shown, mime };
    }
  }
}

/** An output in one line or a few, for the list of cells. */
function summary(output: Message): string {
  if (output.type === 'error') {
    return `${output.ename}: ${output.evalue}`;
  }
  return String(output.text ?? '');
}

/**
 * The front end's answers about the notebook whose kernel a link is connected to: the kernel's notebook
 * tools ask over the link's comm (`notebook_request`: `cells`, `insert`, `run`, `interrupt`) and get one
 * `notebook_reply` each. Cells are added and run through the notebook's own model and session, so they stay
 * in the notebook, as if the user had typed them.
 */
export class NotebookBridge {
  constructor(
    private readonly _kernel: Kernel.IKernelConnection,
    private readonly _send: (msg: Message) => void
  ) {}

  /** Offer the notebook to the kernel, once the link is connected. */
  announce(): void {
    if (tracker) {
      this._send({ type: 'request', id: BRIDGE_ID, action: 'notebook_bridge', enabled: true });
    }
  }

  /** Whether `msg` was the bridge's: a request about the notebook (answered) or the reply to `announce`. */
  handle(msg: Message): boolean {
    if (msg.type === 'reply' && msg.id === BRIDGE_ID) {
      return true;
    }
    if (msg.type !== 'notebook_request') {
      return false;
    }
    void this._answer(msg);
    return true;
  }

  private async _answer(msg: Message): Promise<void> {
    let reply: Message;
    try {
      reply = { ok: true, data: await this._do(msg) };
    } catch (error) {
      reply = { ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    try {
      this._send({ type: 'notebook_reply', id: msg.id, ...reply });
    } catch {
      // The comm closed: the kernel stops waiting on its own.
    }
  }

  private async _do(msg: Message): Promise<unknown> {
    switch (msg.op) {
      case 'cells':
        return this._cells();
      case 'insert':
        return this._insert(msg.kind === 'markdown' ? 'markdown' : 'code', String(msg.source ?? ''), msg.after);
      case 'run':
        return this._run(String(msg.code ?? ''), msg.after);
      case 'interrupt':
        await this._kernel.interrupt();
        return { interrupted: true };
      default:
        throw new Error(`Unknown notebook request ${JSON.stringify(msg.op)}.`);
    }
  }

  /** The notebook in view whose kernel this is, else another one open on it. */
  private _panel(): NotebookPanel {
    const ours = (panel: NotebookPanel | null): panel is NotebookPanel =>
      !!panel && !!panel.model && panel.sessionContext.session?.kernel?.id === this._kernel.id;
    const current = tracker?.currentWidget ?? null;
    if (ours(current)) {
      return current;
    }
    const found = tracker?.find(panel => ours(panel));
    if (!found) {
      throw new Error('No open notebook uses this kernel.');
    }
    return found;
  }

  private _cells(): Message {
    const panel = this._panel();
    const cells = Array.from(panel.model!.cells, cell => {
      const code = cell as unknown as ICodeModelLike;
      return {
        id: cell.id,
        type: cell.type,
        source: cut(cell.sharedModel.getSource(), SOURCE_CHARS),
        execution_count: code.executionCount ?? null,
        outputs: (code.outputs?.toJSON() ?? []).map(o => summary(simplify(o, OUTPUT_CHARS)))
      };
    });
    return { path: panel.context.path, active: panel.content.activeCell?.model.id ?? null, cells };
  }

  /**
   * Where a new cell goes: after `after` when given, else after the cell the bridge last added (so that the
   * steps of one answer stay in order), else after the active cell, else at the end.
   */
  private _place(panel: NotebookPanel, after: unknown): { index: number; after: string | null } {
    const ids = Array.from(panel.model!.cells, cell => cell.id);
    if (typeof after === 'string' && after) {
      const index = ids.indexOf(after);
      if (index < 0) {
        throw new Error(`No cell with id ${after} in ${panel.context.path}: notebook.cells lists the ids.`);
      }
      return { index: index + 1, after };
    }
    const last = this._last ? ids.indexOf(this._last) : -1;
    const index = last >= 0 ? last : panel.content.activeCellIndex;
    if (index >= 0 && index < ids.length) {
      return { index: index + 1, after: ids[index] };
    }
    return { index: ids.length, after: ids.length ? ids[ids.length - 1] : null };
  }

  private _insert(kind: 'code' | 'markdown', source: string, after: unknown): Message {
    const panel = this._panel();
    const place = this._place(panel, after);
    const cell = panel.model!.sharedModel.insertCell(place.index, { cell_type: kind, source, metadata: {} });
    this._last = cell.id;
    if (kind === 'markdown') {
      const widget = panel.content.widgets.find(w => w.model.id === cell.id);
      if (widget) {
        (widget as unknown as { rendered: boolean }).rendered = true;
      }
    }
    return { id: cell.id, ...place };
  }

  /** Add a code cell, run it through the notebook's session, wait for it to finish, and report its outputs. */
  private async _run(code: string, after: unknown): Promise<Message> {
    const panel = this._panel();
    const placed = this._insert('code', code, after);
    const cell = panel.content.widgets.find(w => w.model.id === placed.id);
    if (!cell) {
      throw new Error('The new cell did not appear in the notebook.');
    }
    let status = 'ok';
    try {
      const ran = await runCell({
        cell,
        notebook: panel.model!,
        notebookConfig: panel.content.notebookConfig,
        onCellExecuted: () => undefined,
        onCellExecutionScheduled: () => undefined,
        sessionContext: panel.sessionContext
      });
      status = ran ? 'ok' : 'aborted';
    } catch {
      status = 'error'; // the error is among the cell's outputs
    }
    const model = cell.model as unknown as ICodeModelLike;
    return {
      cell_id: placed.id,
      index: placed.index,
      after: placed.after,
      execution_count: model.executionCount ?? null,
      status,
      outputs: (model.outputs?.toJSON() ?? []).map(o => simplify(o, RUN_OUTPUT_CHARS))
    };
  }

  private _last: string | null = null;
}
