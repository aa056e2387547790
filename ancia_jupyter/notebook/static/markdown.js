// A small, safe Markdown renderer for chat answers.
//
// Safety comes first: the text is HTML-escaped before any Markdown is recognised, so model output can never
// inject markup; links keep only http(s) and mailto targets. It also renders half-written text well, since
// it runs again and again on a streaming answer: an unclosed code fence shows as code so far.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const SAFE_URL = /^(https?:\/\/|mailto:)/i;
const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

function safeUrl(url) {
  const decoded = url.replace(/&amp;/g, "&").trim();
  return SAFE_URL.test(decoded) ? url.trim() : null;
}

// Inline Markdown over already-escaped text: code spans first (their content is left alone), then links,
// bare URLs, bold, italic and strikethrough.
function inline(escaped) {
  const spans = [];
  const hold = (html) => `\u0000${spans.push(html) - 1}\u0000`;
  let out = escaped.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_, __, code) => hold(`<code>${code.trim()}</code>`));
  out = out.replace(/\[([^\]\n]+)\]\(([^()\s]+)(?:\s+&quot;[^\n]*?&quot;)?\)/g, (whole, label, url) => {
    const href = safeUrl(url);
    return href ? hold(`<a href="${href}" target="_blank" rel="noopener noreferrer">${label}</a>`) : label;
  });
  out = out.replace(/\bhttps?:\/\/(?:(?!&quot;|&#39;|&lt;|&gt;)[^\s<>\u0000])*[^\s<>\u0000.,;:!?)&]/g,
    (url) => hold(`<a href="${url}" target="_blank" rel="noopener noreferrer">${url}</a>`));
  out = out
    .replace(/(\*\*|__)(?=\S)([\s\S]*?\S)\1/g, "<strong>$2</strong>")
    .replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>")
    .replace(/(^|[^\w])_(?=\S)([^_\n]*?\S)_(?!\w)/g, "$1<em>$2</em>")
    .replace(/~~(?=\S)([\s\S]*?\S)~~/g, "<del>$1</del>");
  return out.replace(/\u0000(\d+)\u0000/g, (_, i) => spans[Number(i)]);
}

function inlineLines(lines) {
  return inline(escapeHtml(lines.join("\n"))).replace(/\n/g, "<br>\n"); // the line break stays in the text too
}

function isBlockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function splitRow(line) {
  let row = line.trim();
  if (row.startsWith("|")) row = row.slice(1);
  if (row.endsWith("|")) row = row.slice(0, -1);
  return row.split("|").map((cell) => cell.trim());
}

function renderTable(lines) {
  const head = splitRow(lines[0]);
  const align = splitRow(lines[1]).map((c) => (c.endsWith(":") ? (c.startsWith(":") ? "center" : "right") : ""));
  const cell = (tag, text, i) => `<${tag}${align[i] ? ` style="text-align:${align[i]}"` : ""}>${inline(escapeHtml(text))}</${tag}>`;
  const body = lines.slice(2).map((l) => `<tr>${splitRow(l).map((c, i) => cell("td", c, i)).join("")}</tr>`);
  return `<table><thead><tr>${head.map((c, i) => cell("th", c, i)).join("")}</tr></thead>` +
    `<tbody>${body.join("")}</tbody></table>`;
}

function renderList(lines) {
  const first = lines[0].match(ITEM);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const items = [];
  for (const line of lines) {
    const m = line.match(ITEM);
    if (m && m[1].length <= indent) items.push([m[3]]);
    else items[items.length - 1].push(line.replace(new RegExp(`^\\s{0,${indent + 4}}`), ""));
  }
  const start = ordered && parseInt(first[2], 10) !== 1 ? ` start="${parseInt(first[2], 10)}"` : "";
  const html = items.map((item) => {
    const [text, ...rest] = item;
    const nested = rest.length ? renderBlocks(rest) : "";
    const checkbox = text.match(/^\[([ xX])\]\s+(.*)$/);
    const label = checkbox
      ? `<input type="checkbox" disabled${checkbox[1] === " " ? "" : " checked"}> ${inline(escapeHtml(checkbox[2]))}`
      : inline(escapeHtml(text));
    return `<li>${label}${nested}</li>`;
  });
  return ordered ? `<ol${start}>${html.join("")}</ol>` : `<ul>${html.join("")}</ul>`;
}

function renderBlocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    const fence = line.match(FENCE);
    if (fence) {
      const code = [];
      i += 1;
      while (i < lines.length && !new RegExp(`^ {0,3}${fence[1][0]}{${fence[1].length},}\\s*$`).test(lines[i])) {
        code.push(lines[i]);
        i += 1;
      }
      i += 1;
      const lang = fence[2] ? ` class="language-${escapeHtml(fence[2])}"` : "";
      const label = fence[2] ? `<span class="ancia-code-lang">${escapeHtml(fence[2])}</span>` : "";
      out.push(`<div class="ancia-code">${label}<button type="button" class="ancia-code-copy" ` +
        `aria-label="Copy code" title="Copy code">Copy</button><pre><code${lang}>${escapeHtml(code.join("\n"))}` +
        `</code></pre></div>`);
      continue;
    }
    const heading = line.match(HEADING);
    if (heading) {
      const level = heading[1].length;
      out.push(`<h${level}>${inline(escapeHtml(heading[2]))}</h${level}>`);
      i += 1;
      continue;
    }
    if (RULE.test(line)) { out.push("<hr>"); i += 1; continue; }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && lines[i].trim() && QUOTE.test(lines[i])) quoted.push(lines[i++].replace(QUOTE, ""));
      out.push(`<blockquote>${renderBlocks(quoted)}</blockquote>`);
      continue;
    }
    if (ITEM.test(line)) {
      const items = [];
      const [, indent, marker] = line.match(ITEM);
      const sameList = (l) => {
        const m = l.match(ITEM);
        return m && (m[1].length > indent.length || /\d/.test(m[2]) === /\d/.test(marker));
      };
      while (i < lines.length && (sameList(lines[i]) || (lines[i].trim() && /^\s+/.test(lines[i]) && !ITEM.test(lines[i])) ||
        (!lines[i].trim() && i + 1 < lines.length && (sameList(lines[i + 1]) || /^\s+\S/.test(lines[i + 1]))))) {
        if (lines[i].trim()) items.push(lines[i]);
        i += 1;
      }
      out.push(renderList(items));
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      const rows = [line, lines[i + 1]];
      i += 2;
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(lines[i++]);
      out.push(renderTable(rows));
      continue;
    }
    const para = [];
    while (i < lines.length && lines[i].trim() && (para.length === 0 || !isBlockStart(lines[i]))) para.push(lines[i++]);
    out.push(`<p>${inlineLines(para)}</p>`);
  }
  return out.join("");
}

// Markdown to an HTML string that is safe to assign to innerHTML.
export function renderMarkdown(text) {
  const clean = String(text ?? "").replace(/\r\n?/g, "\n").replace(/\u0000/g, "");
  return renderBlocks(clean.split("\n"));
}
