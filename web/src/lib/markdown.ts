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

/** Renders untrusted Markdown (a model answer, a user message) to HTML that contains no raw HTML. */
export function renderMarkdown(src: string): string {
  return md.render(src);
}
