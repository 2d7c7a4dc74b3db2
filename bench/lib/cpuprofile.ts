/** Summarises a V8 `.cpuprofile`: busy time by package and by function (self and inclusive). */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

function where(url: string): string {
  if (!url) return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/server\/(.*)\.js$/.exec(url);
  if (own) return `hridaai:${own[1]}`;
  return url.startsWith('node:') ? url.split('/').slice(0, 2).join('/') : url;
}

export function summarise(file: string, top = 30): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[] };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map<number, number>();
  for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const self = new Map<string, number>();
  const pkgs = new Map<string, number>();
  const incl = new Map<string, number>();
  let busy = 0;
  const name = (n: Node) =>
    `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
  for (const [id, c] of counts) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') continue;
    busy += c;
    self.set(name(n), (self.get(name(n)) ?? 0) + c);
    const w = where(n.callFrame.url);
    pkgs.set(w, (pkgs.get(w) ?? 0) + c);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = name(byId.get(cur)!);
      if (k.includes('hridaai:') && !seen.has(k)) {
        seen.add(k);
        incl.set(k, (incl.get(k) ?? 0) + c);
      }
    }
  }
  const table = (title: string, m: Map<string, number>) =>
    [
      `-- ${title}`,
      ...[...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([k, v]) => `${((100 * v) / busy).toFixed(1).padStart(6)}%  ${k}`),
    ].join('\n');
  return [
    `${busy} busy samples`,
    table('self time by package', pkgs),
    table('self time by function', self),
    table('inclusive time of HridaAI functions', incl),
  ].join('\n\n');
}
