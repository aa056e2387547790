import { NotebookPanel } from '@jupyterlab/notebook';

/** Characters of the code cells above sent with a request, at most (the kernel trims to its token budget). */
export const CELLS_BUDGET = 24000;

/** The code cells above the active one (nearest last, whole cells within the budget) and its code-cell index. */
export interface ICellsAbove {
  cells: string[];
  index: number;
}

/**
 * What the notebook above the cursor says: the code cells before the active cell. The index counts code
 * cells only, the ones left out too, so the kernel can keep the start of its prompt in place while the user
 * moves between cells.
 */
export function cellsAbove(panel: NotebookPanel, budget = CELLS_BUDGET): ICellsAbove {
  const notebook = panel.content;
  const active = notebook.activeCellIndex;
  const code: string[] = [];
  for (let i = 0; i < active && i < notebook.widgets.length; i++) {
    const model = notebook.widgets[i].model;
    if (model.type === 'code') {
      code.push(model.sharedModel.getSource());
    }
  }
  const cells: string[] = [];
  let used = 0;
  for (let i = code.length - 1; i >= 0; i--) {
    used += code[i].length;
    if (used > budget) {
      break;
    }
    cells.unshift(code[i]);
  }
  return { cells, index: code.length };
}
