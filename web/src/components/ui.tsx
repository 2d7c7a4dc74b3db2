import { useEffect, useId, useRef, useState, type ComponentPropsWithRef, type ReactNode } from 'react';
import { effectiveTheme, setTheme, storedTheme, type ThemeChoice } from '../lib/theme';

type FieldProps = ComponentPropsWithRef<'input'> & { label: string; hint?: ReactNode };

/** A labelled input; the hint is announced with the field (aria-describedby). */
export function Field({ label, hint, id, ...input }: FieldProps) {
  const autoId = useId();
  const fieldId = id ?? autoId;
  const hintId = hint ? `${fieldId}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={fieldId}>{label}</label>
      <input id={fieldId} aria-describedby={hintId} {...input} />
      {hint ? (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      ) : null}
    </div>
  );
}

export function Alert({ kind = 'error', children }: { kind?: 'error' | 'info' | 'success'; children: ReactNode }) {
  if (!children) return null;
  return (
    <div className={`alert alert-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div className="spinner" role="status">
      <span className="spinner-dot" aria-hidden="true" />
      <span>{label}…</span>
    </div>
  );
}

/** A modal confirmation built on <dialog>: focus moves into it, Escape cancels. */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  danger,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <h2 id={titleId}>{title}</h2>
      {children ? <div className="dialog-body">{children}</div> : null}
      <div className="dialog-actions">
        <button type="button" className="btn" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className={danger ? 'btn btn-danger' : 'btn btn-primary'} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

function useThemeChoice(): [ThemeChoice, 'light' | 'dark'] {
  const [, force] = useState(0);
  useEffect(() => {
    const update = () => force((n) => n + 1);
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    window.addEventListener('hridaai-theme', update);
    mq?.addEventListener('change', update);
    return () => {
      window.removeEventListener('hridaai-theme', update);
      mq?.removeEventListener('change', update);
    };
  }, []);
  const choice = storedTheme();
  return [choice, effectiveTheme(choice)];
}

/** Header button: switches between light and dark. */
export function ThemeToggle() {
  const [, effective] = useThemeChoice();
  const next = effective === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      className="btn btn-ghost icon-btn"
      onClick={() => setTheme(next)}
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme`}
    >
      <span aria-hidden="true">{effective === 'dark' ? '☀' : '☾'}</span>
    </button>
  );
}

/** Settings control: system, light or dark. */
export function ThemeSelect() {
  const [choice] = useThemeChoice();
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>Theme</label>
      <select id={id} value={choice} onChange={(e) => setTheme(e.target.value as ThemeChoice)}>
        <option value="system">Same as the device</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </div>
  );
}

/** Heading that receives focus when the page changes (screen readers announce the new page). */
export function PageTitle({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    const active = document.activeElement;
    if (!active || active === document.body || active.closest('nav')) ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1} className="page-title">
      {children}
    </h1>
  );
}

/** A modal form on <dialog>: focus moves into it, Escape cancels, Enter submits. */
export function FormDialog({
  open,
  title,
  submitLabel,
  danger,
  busy,
  onSubmit,
  onCancel,
  children,
}: {
  open: boolean;
  title: string;
  submitLabel: string;
  danger?: boolean;
  busy?: boolean;
  onSubmit: () => void;
  onCancel: () => void;
  children: ReactNode;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <form
        onSubmit={(e) => {
          e.preventDefault();
          onSubmit();
        }}
      >
        <h2 id={titleId}>{title}</h2>
        <div className="dialog-body stack">{open ? children : null}</div>
        <div className="dialog-actions">
          <button type="button" className="btn" onClick={onCancel}>
            Cancel
          </button>
          <button type="submit" className={danger ? 'btn btn-danger' : 'btn btn-primary'} disabled={busy}>
            {submitLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
