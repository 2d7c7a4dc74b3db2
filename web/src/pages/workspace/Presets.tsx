import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import { del, get, messageOf, patch, post } from '../../lib/api';
import type { ModelInfo } from '../../lib/types';
import { GrantEditor } from '../../components/GrantEditor';
import { Alert, ConfirmDialog, Field, PageTitle, Spinner } from '../../components/ui';

interface Preset {
  id: string;
  name: string;
  base_model_id: string;
  description: string;
  is_active: boolean;
  owner_id: string;
  can_write: boolean;
  system_prompt?: string | null;
  params?: Record<string, unknown>;
  knowledge_ids?: string[];
  file_ids?: string[];
}

/** Workspace models: a base model with a system prompt and parameters, shared with grants. */
export function PresetsSection() {
  const [items, setItems] = useState<Preset[] | null>(null);
  const [models, setModels] = useState<ModelInfo[]>([]);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const [form, setForm] = useState({ id: '', name: '', base: '', description: '', system: '' });
  const baseId = useId();

  const load = useCallback(async () => {
    try {
      setItems((await get<{ items: Preset[] }>('/api/v1/presets')).items);
    } catch (e) {
      setError(messageOf(e));
      setItems([]);
    }
  }, []);

  useEffect(() => {
    void load();
    get<{ data: ModelInfo[] }>('/api/models')
      .then((r) => setModels(r.data))
      .catch(() => setModels([]));
  }, [load]);

  async function create(e: FormEvent) {
    e.preventDefault();
    setError('');
    setInfo('');
    try {
      await post('/api/v1/presets', {
        id: form.id.trim(),
        name: form.name.trim(),
        base_model_id: form.base,
        description: form.description,
        system_prompt: form.system.trim() ? form.system : null,
      });
      setInfo(`The model “${form.name.trim()}” was created.`);
      setForm({ id: '', name: '', base: form.base, description: '', system: '' });
      await load();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  return (
    <>
      <PageTitle>Models</PageTitle>
      <p>Your own models: a base model with instructions, shared with the people and groups you choose.</p>
      <Alert>{error}</Alert>
      <Alert kind="success">{info}</Alert>
      {items === null ? (
        <Spinner label="Loading models" />
      ) : items.length === 0 ? (
        <p>No workspace models yet.</p>
      ) : (
        <ul className="cards">
          {items.map((p) => (
            <li key={p.id} className="card">
              <div className="card-head">
                <div>
                  <div className="cell-title">{p.name}</div>
                  <div className="cell-sub mono">
                    {p.id} → {p.base_model_id}
                  </div>
                </div>
                {p.can_write ? (
                  <button
                    type="button"
                    className="btn btn-small"
                    aria-expanded={open === p.id}
                    onClick={() => setOpen(open === p.id ? null : p.id)}
                  >
                    Edit<span className="sr-only"> {p.name}</span>
                  </button>
                ) : (
                  <span className="badge badge-warn">Shared with you</span>
                )}
              </div>
              {p.description ? <p className="small">{p.description}</p> : null}
              {!p.is_active ? <span className="badge badge-bad">Inactive</span> : null}
              {open === p.id ? (
                <PresetEditor
                  preset={p}
                  models={models}
                  onSaved={() => void load()}
                  onDeleted={() => {
                    setOpen(null);
                    void load();
                  }}
                />
              ) : null}
            </li>
          ))}
        </ul>
      )}
      <h2>New model</h2>
      <form onSubmit={create} className="stack narrow">
        <Field
          label="Model id"
          name="preset-id"
          required
          pattern="[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}"
          hint="Letters, digits and . _ : @ - — programs use it as the model name."
          value={form.id}
          onChange={set('id')}
        />
        <Field label="Display name" name="preset-name" required value={form.name} onChange={set('name')} />
        <div className="field">
          <label htmlFor={baseId}>Base model</label>
          <select id={baseId} required value={form.base} onChange={set('base')}>
            <option value="">Choose…</option>
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.name || m.id}
              </option>
            ))}
          </select>
        </div>
        <Field label="Description" name="preset-description" value={form.description} onChange={set('description')} />
        <div className="field">
          <label htmlFor="preset-system">System prompt</label>
          <textarea id="preset-system" rows={4} value={form.system} onChange={set('system')} />
        </div>
        <div className="row">
          <button
            type="submit"
            className="btn btn-primary"
            disabled={!form.id.trim() || !form.name.trim() || !form.base}
          >
            Create model
          </button>
        </div>
      </form>
    </>
  );
}

function PresetEditor({
  preset,
  models,
  onSaved,
  onDeleted,
}: {
  preset: Preset;
  models: ModelInfo[];
  onSaved: () => void;
  onDeleted: () => void;
}) {
  const [name, setName] = useState(preset.name);
  const [description, setDescription] = useState(preset.description);
  const [base, setBase] = useState(preset.base_model_id);
  const [system, setSystem] = useState(preset.system_prompt ?? '');
  const [active, setActive] = useState(preset.is_active);
  const [knowledge, setKnowledge] = useState<string[]>(preset.knowledge_ids ?? []);
  const [bases, setBases] = useState<{ id: string; name: string }[]>([]);
  const [error, setError] = useState('');
  const [info, setInfo] = useState('');
  const [confirm, setConfirm] = useState(false);
  const baseId = useId();
  const sysId = useId();
  const url = `/api/v1/presets/${encodeURIComponent(preset.id)}`;

  useEffect(() => {
    get<{ items: { id: string; name: string }[] }>('/api/v1/knowledge')
      .then((r) => setBases(r.items))
      .catch(() => setBases([]));
  }, []);
  const knowledgeChanged =
    knowledge.length !== (preset.knowledge_ids ?? []).length ||
    knowledge.some((id) => !(preset.knowledge_ids ?? []).includes(id));

  async function save(e: FormEvent) {
    e.preventDefault();
    setError('');
    setInfo('');
    try {
      await patch(url, {
        name: name.trim(),
        description,
        base_model_id: base,
        system_prompt: system.trim() ? system : null,
        is_active: active,
        ...(knowledgeChanged ? { knowledge_ids: knowledge } : {}),
      });
      setInfo('Saved.');
      onSaved();
    } catch (err) {
      setError(messageOf(err));
    }
  }

  return (
    <div className="card-body">
      <form onSubmit={save} className="stack narrow">
        <Field label="Display name" name="name" required value={name} onChange={(e) => setName(e.target.value)} />
        <div className="field">
          <label htmlFor={baseId}>Base model</label>
          <select id={baseId} value={base} onChange={(e) => setBase(e.target.value)}>
            {!models.some((m) => m.id === base) ? <option value={base}>{base}</option> : null}
            {models
              .filter((m) => m.id !== preset.id)
              .map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name || m.id}
                </option>
              ))}
          </select>
        </div>
        <Field
          label="Description"
          name="description"
          value={description}
          onChange={(e) => setDescription(e.target.value)}
        />
        <div className="field">
          <label htmlFor={sysId}>System prompt</label>
          <textarea id={sysId} rows={4} value={system} onChange={(e) => setSystem(e.target.value)} />
        </div>
        {bases.length || knowledge.length ? (
          <fieldset className="stack">
            <legend>Knowledge</legend>
            <p className="muted small">
              Passages from these knowledge bases are added to every chat with this model — only for people who may read
              the knowledge base themselves.
            </p>
            {bases.map((b) => (
              <label key={b.id} className="check">
                <input
                  type="checkbox"
                  checked={knowledge.includes(b.id)}
                  onChange={(e) =>
                    setKnowledge(e.target.checked ? [...knowledge, b.id] : knowledge.filter((x) => x !== b.id))
                  }
                />{' '}
                {b.name}
              </label>
            ))}
            {knowledge.filter((id) => !bases.some((b) => b.id === id)).length ? (
              <p className="muted small">
                {knowledge.filter((id) => !bases.some((b) => b.id === id)).length} attached knowledge base(s) you cannot
                read.
              </p>
            ) : null}
          </fieldset>
        ) : null}
        <label className="check">
          <input type="checkbox" checked={active} onChange={(e) => setActive(e.target.checked)} /> Active
        </label>
        <Alert>{error}</Alert>
        <Alert kind="success">{info}</Alert>
        <div className="row">
          <button type="submit" className="btn btn-primary">
            Save model
          </button>
          <button type="button" className="btn btn-danger-outline" onClick={() => setConfirm(true)}>
            Delete model
          </button>
        </div>
      </form>
      <GrantEditor type="model" id={preset.id} name={preset.name} />
      <ConfirmDialog
        open={confirm}
        danger
        title={`Delete “${preset.name}”?`}
        confirmLabel="Delete"
        onCancel={() => setConfirm(false)}
        onConfirm={async () => {
          setConfirm(false);
          try {
            await del(url);
            onDeleted();
          } catch (err) {
            setError(messageOf(err));
          }
        }}
      />
    </div>
  );
}
