// The in-notebook panel's front end: ancia_jupyter/notebook/static/widget.js (the anywidget entry, which imports
// chat-ui.js like the sidebar does) and chat.css, bundled by Rspack, the bundler @jupyter/builder runs for
// the sidebar, into one ES module and one stylesheet that widget.py hands to anywidget (`_esm`, `_css`).
//
//   node labextension/build-panel.mjs [--development] [--watch]
//
// Output: ancia_jupyter/notebook/bundle/panel.js and panel.css (git-ignored; the wheel carries them).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { rspack } from '@rspack/core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const development = args.has('--development') || args.has('--watch');

const compiler = rspack({
  mode: development ? 'development' : 'production',
  context: root,
  target: ['web', 'es2020'],
  // The module's exports are the last entry's: widget.js's `export default { render }`.
  entry: { panel: ['./ancia_jupyter/notebook/static/chat.css', './ancia_jupyter/notebook/static/widget.js'] },
  output: {
    path: path.join(root, 'ancia_jupyter', 'notebook', 'bundle'),
    filename: '[name].js',
    cssFilename: '[name].css',
    module: true,
    chunkFormat: 'module',
    library: { type: 'modern-module' },
    clean: true
  },
  module: { rules: [{ test: /\.css$/, type: 'css' }] },
  // anywidget imports the module from a blob: URL, where a separate .map file cannot be found.
  devtool: development ? 'inline-source-map' : false,
  optimization: { splitChunks: false, runtimeChunk: false },
  performance: { hints: false }
});

function report(error, stats) {
  if (error) {
    console.error(error);
    process.exitCode = 1;
    return;
  }
  const info = stats.toString({ colors: false, preset: 'errors-warnings' });
  if (info.trim()) {
    console.log(info);
  }
  if (stats.hasErrors()) {
    process.exitCode = 1;
  } else {
    console.log(`panel bundle: ${path.relative(root, stats.compilation.outputOptions.path)}/panel.{js,css}`);
  }
}

if (args.has('--watch')) {
  compiler.watch({}, report);
} else {
  compiler.run((error, stats) => {
    report(error, stats);
    compiler.close(() => undefined);
  });
}
