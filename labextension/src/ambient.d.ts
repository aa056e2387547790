// Modules the bundle takes from outside labextension/src, typed here. (The chat UI,
// ancia_jupyter/notebook/static/chat-ui.js, has its declarations beside it: chat-ui.d.ts.)

/** The root package.json: the sidebar's version, compared with the kernel's ancia-jupyter. */
declare module '*/package.json' {
  const pkg: { name: string; version: string };
  export default pkg;
}
