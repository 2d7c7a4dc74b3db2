import hljs from 'highlight.js/lib/core';
import MarkdownIt from 'markdown-it';

/**
 * Markdown for model answers. `html: false` escapes every tag a model writes, so raw HTML never
 * reaches the DOM; links are limited to markdown-it's safe schemes (no javascript:, vbscript:,
 * file:, data:) and open in a new tab without a referrer; images are not loaded (a remote image
 * in an answer could leak the conversation), their link is shown instead. Code is highlighted by
 * highlight.js, whose output escapes the source text.
 */
const md: MarkdownIt = new MarkdownIt({
  html: false,
  linkify: true,
  typographer: false,
  breaks: false,
  highlight(code: string, lang: string): string {
    const language = (lang || '').trim().split(/\s+/)[0]!.toLowerCase();
    let body: string;
    if (language && hljs.getLanguage(language)) {
      body = hljs.highlight(code, { language, ignoreIllegals: true }).value;
    } else {
      body = md.utils.escapeHtml(code);
    }
    const label = language ? `<span class="code-lang">${md.utils.escapeHtml(language)}</span>` : '';
    return `<pre class="code-block">${label}<code class="hljs">${body}</code></pre>`;
  },
});

md.disable('image');

const defaultLinkOpen =
  md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));

md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const token = tokens[idx]!;
  token.attrSet('target', '_blank');
  token.attrSet('rel', 'noopener noreferrer nofollow');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** Python fences: `python`, `py`, `python3`, also with more words (`python exec`). */
export function isPythonFence(info: string): boolean {
  const lang = info.trim().split(/\s+/)[0]!.toLowerCase();
  return lang === 'python' || lang === 'py' || lang === 'python3';
}

/** A fenced code block: its info string split into words, and its text. */
export interface Fence {
  words: string[];
  code: string;
}

/** Every fenced code block of the source, in document order (nested ones included). */
export function fencesOf(src: string): Fence[] {
  return md
    .parse(src, {})
    .filter((t) => t.type === 'fence')
    .map((t) => ({ words: t.info.trim().toLowerCase().split(/\s+/).filter(Boolean), code: t.content }));
}

/** The Python blocks of the source, in the order `renderMarkdown(…, { codeSlots: true })` numbers them. */
export function pythonBlocks(src: string): string[] {
  return fencesOf(src)
    .filter((f) => isPythonFence(f.words.join(' ')))
    .map((f) => f.code);
}

interface RenderEnv {
  codeSlots?: boolean;
  python?: number;
}

const defaultFence = md.renderer.rules.fence!;

// After each Python block, an empty placeholder the page fills with its Run button and output.
md.renderer.rules.fence = (tokens, idx, options, env: RenderEnv, self) => {
  const html = defaultFence(tokens, idx, options, env, self);
  if (!env?.codeSlots || !isPythonFence(tokens[idx]!.info)) return html;
  const n = env.python ?? 0;
  env.python = n + 1;
  return `${html}<div class="code-run-slot" data-code-index="${n}"></div>\n`;
};

/**
 * Renders untrusted Markdown (a model answer, a user message) to HTML that contains no raw HTML.
 * `codeSlots`: add an empty `.code-run-slot` element after every Python block (numbered from 0).
 */
export function renderMarkdown(src: string, opts: { codeSlots?: boolean } = {}): string {
  const env: RenderEnv = { codeSlots: opts.codeSlots === true };
  return md.render(src, env);
}
