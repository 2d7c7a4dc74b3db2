import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOC_PATH, renderDoc } from '../../scripts/config-docs.js';
import { settings } from '../../server/config/schema.js';

describe('docs/configuration.md', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');

  it('matches the schema exactly (run `npm run docs:config` after changing a setting)', () => {
    expect(doc).toBe(renderDoc(doc));
  });

  it('lists every setting with its default', () => {
    for (const [name, def] of Object.entries(settings)) {
      const row = doc.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      expect(row, name).toBeDefined();
      if (def.default !== null && def.default !== '') expect(row, name).toContain('`' + def.default + '`');
    }
  });

  it('covers every setting of the specification that the schema declares', () => {
    const spec = readFileSync(new URL('../../docs/spec-settings.txt', import.meta.url), 'utf8')
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
    const implemented = spec.filter((s) => s in settings);
    // The list grows as features land; each implemented one must be documented (checked above).
    expect(implemented.length).toBeGreaterThan(30);
  });
});
