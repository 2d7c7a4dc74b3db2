import { useContext, useMemo, useState } from 'react';
import { SessionContext } from '../../components/session';
import { DEFAULT_IFRAME_CSP, findArtifacts, sandboxDocument } from '../../lib/artifacts';

/**
 * Previews of HTML/SVG from an answer, each in an iframe that is sandboxed (scripts at most, in an
 * opaque origin: no cookies, no access to this page, no navigation of it, no pop-ups, no forms)
 * and carries IFRAME_CSP as its first element.
 */
export function Artifacts({ markdown }: { markdown: string }) {
  const session = useContext(SessionContext);
  const policy = session?.config.iframe_csp || DEFAULT_IFRAME_CSP;
  const artifacts = useMemo(() => findArtifacts(markdown), [markdown]);
  const [open, setOpen] = useState<number | null>(null);
  if (artifacts.length === 0) return null;
  return (
    <div className="artifacts">
      <div className="row tight">
        {artifacts.map((a, i) => (
          <button
            key={i}
            type="button"
            className="btn btn-small"
            aria-expanded={open === i}
            onClick={() => setOpen(open === i ? null : i)}
          >
            {open === i ? 'Hide' : 'Preview'} {a.lang.toUpperCase()}
            {artifacts.length > 1 ? ` ${i + 1}` : ''}
          </button>
        ))}
      </div>
      {open !== null && artifacts[open] ? (
        <iframe
          key={open}
          className="artifact"
          title={`Preview of ${artifacts[open].lang.toUpperCase()} from the answer`}
          sandbox="allow-scripts"
          referrerPolicy="no-referrer"
          srcDoc={sandboxDocument(artifacts[open].code, policy)}
        />
      ) : null}
    </div>
  );
}
