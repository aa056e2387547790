import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  CompletionHandler,
  ICompletionProviderManager,
  IInlineCompletionContext,
  IInlineCompletionItem,
  IInlineCompletionList,
  IInlineCompletionProvider,
  InlineCompletionTriggerKind
} from '@jupyterlab/completer';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import pkg from '../../package.json';
import { delay } from './comm-close';
import { cellsAbove } from './completer-context';
import { CompletionLink, SuggestionStream } from './completer-link';
import { anciaIcon } from './icon';

/** How long a typed-as-you-go request waits for its first text (ms): a busy kernel gives none in time. */
const FIRST_TEXT_WAIT = 2500;

/** How long an explicit request (Alt+\) waits: long enough for the completion model to load (ms). */
const INVOKED_WAIT = 30000;

/** The settings in schema/completer.json. */
export interface ICompleterSettings {
  enabled: boolean;
  debounce: number;
  longest: 'line' | 'block';
}

const DEFAULTS: ICompleterSettings = { enabled: true, debounce: 200, longest: 'line' };

/**
 * Ghost text from ancia in notebook cells: JupyterLab's inline completer asks (`fetch`), and the suggestion
 * grows as the kernel's model writes it (`stream`). Tab accepts, Escape dismisses, typing on refines:
 * JupyterLab does those. A newer request cancels the older one in the kernel; a kernel without ancia, a
 * busy one or a slow one gives no suggestion, and nothing is ever shown as an error.
 */
export class AnciaInlineProvider implements IInlineCompletionProvider {
  readonly identifier = 'ancia';
  readonly name = 'Ancia';
  readonly icon = anciaIcon;

  constructor(
    private readonly _tracker: INotebookTracker | null,
    private readonly _version: string
  ) {}

  /** Take the user's settings (schema/completer.json). */
  useSettings(settings: Partial<ICompleterSettings>): void {
    this._settings = { ...DEFAULTS, ...settings };
  }

  async fetch(request: CompletionHandler.IRequest, context: IInlineCompletionContext): Promise<IInlineCompletionList> {
    const none: IInlineCompletionList = { items: [] };
    const panel = context.widget instanceof NotebookPanel ? context.widget : null;
    const kernel = context.session?.kernel;
    if (!this._settings.enabled || !panel || !kernel || (this._tracker && !this._tracker.has(panel))) {
      return none;
    }
    const invoked = context.triggerKind === InlineCompletionTriggerKind.Invoke;
    const turn = ++this._turn;
    this._current?.cancel();
    this._current = null;
    if (!invoked && this._settings.debounce > 0) {
      await delay(this._settings.debounce);
      if (turn !== this._turn) {
        return none; // the user typed on
      }
    }
    const { cells, index } = cellsAbove(panel);
    const stream = await this._link(kernel).complete({
      prefix: request.text.slice(0, request.offset),
      suffix: request.text.slice(request.offset),
      cells,
      cell_index: index,
      mode: this._settings.longest
    });
    if (!stream) {
      return none;
    }
    if (turn !== this._turn) {
      stream.cancel();
      return none;
    }
    this._current = stream;
    if (!(await stream.firstText(invoked ? INVOKED_WAIT : FIRST_TEXT_WAIT)) || turn !== this._turn) {
      stream.cancel(); // a busy or slow kernel: no suggestion, and it stops working on this one
      return none;
    }
    const item: IInlineCompletionItem = { insertText: stream.text };
    if (!stream.ended) {
      const token = `ancia-${stream.id}`;
      this._streams.set(token, stream);
      item.isIncomplete = true;
      item.token = token;
    }
    return { items: [item] };
  }

  async *stream(token: string): AsyncGenerator<{ response: IInlineCompletionItem }, undefined, unknown> {
    const stream = this._streams.get(token);
    this._streams.delete(token);
    if (!stream) {
      return;
    }
    let shown = stream.text;
    let version = stream.version;
    while (!stream.ended) {
      await stream.changedSince(version);
      version = stream.version;
      if (stream.text !== shown && (stream.text || !stream.ended)) {
        shown = stream.text;
        yield { response: { insertText: shown } };
      }
    }
  }

  private _link(kernel: Kernel.IKernelConnection): CompletionLink {
    let link = this._links.get(kernel);
    if (!link) {
      link = new CompletionLink(kernel, this._version);
      this._links.set(kernel, link);
      kernel.disposed.connect(() => {
        this._links.get(kernel)?.dispose();
        this._links.delete(kernel);
      });
    }
    return link;
  }

  private _current: SuggestionStream | null = null;
  private _links = new Map<Kernel.IKernelConnection, CompletionLink>();
  private _settings: ICompleterSettings = DEFAULTS;
  private _streams = new Map<string, SuggestionStream>();
  private _turn = 0;
}

/** Inline completion in notebook cells from the kernel's model (schema/completer.json). */
export const completerPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ancia-jupyter:completer',
  description: 'Code suggestions from the local model in the notebook\'s kernel, as ghost text in cells.',
  autoStart: true,
  requires: [ICompletionProviderManager],
  optional: [INotebookTracker, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    manager: ICompletionProviderManager,
    tracker: INotebookTracker | null,
    registry: ISettingRegistry | null
  ): void => {
    const provider = new AnciaInlineProvider(tracker, pkg.version);
    manager.registerInlineProvider(provider);
    if (registry) {
      void registry
        .load(completerPlugin.id)
        .then(settings => {
          const apply = () => provider.useSettings(settings.composite as Partial<ICompleterSettings>);
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => console.warn('Ancia: the inline completion settings did not load', reason));
    }
  }
};
