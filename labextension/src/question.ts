import { INotebookTracker } from '@jupyterlab/notebook';

/**
 * The question "Send cell to Ancia" puts in the message box: the selected text of the active cell, or
 * the whole cell when nothing is selected, fenced as code for a code cell. Null when there is no text.
 */
export function cellQuestion(tracker: INotebookTracker): string | null {
  const cell = tracker.activeCell;
  if (!cell) {
    return null;
  }
  const source = cell.model.sharedModel.getSource();
  let text = source;
  const editor = cell.editor;
  if (editor) {
    const selection = editor.getSelection();
    const start = editor.getOffsetAt(selection.start);
    const end = editor.getOffsetAt(selection.end);
    if (start !== end) {
      text = source.slice(Math.min(start, end), Math.max(start, end));
    }
  }
  if (!text.trim()) {
    return null;
  }
  if (cell.model.type !== 'code') {
    return `Explain this:\n\n${text}\n`;
  }
  const metadata = tracker.currentWidget?.model?.getMetadata('language_info') as
    | { name?: string }
    | undefined;
  return codeQuestion(text, metadata?.name || 'python');
}

/** `Explain this code:` and the code in a fence longer than any backtick run inside it. */
export function codeQuestion(code: string, language: string): string {
  const longest = Math.max(2, ...(code.match(/`+/g) ?? []).map(run => run.length));
  const fence = '`'.repeat(longest + 1);
  return `Explain this code:\n${fence}${language}\n${code.replace(/\n+$/, '')}\n${fence}\n`;
}
