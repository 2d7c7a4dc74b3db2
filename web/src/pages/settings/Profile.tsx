import { useRef, useState, type ChangeEvent, type FormEvent } from 'react';
import { messageOf, post } from '../../lib/api';
import { formatTime } from '../../lib/format';
import { useSession } from '../../components/session';
import { Alert, Field, PageTitle, ThemeSelect } from '../../components/ui';

export function ProfileSection() {
  const { me, refresh } = useSession();
  const [name, setName] = useState(me.name);
  const [error, setError] = useState('');
  const [saved, setSaved] = useState('');
  const [busy, setBusy] = useState(false);
  const [imageVersion, setImageVersion] = useState(0);
  const [imageError, setImageError] = useState('');
  const fileRef = useRef<HTMLInputElement>(null);

  async function setImage(image: string | null) {
    setImageError('');
    try {
      await post('/api/v1/users/me/profile-image', { image });
      setImageVersion((v) => v + 1);
    } catch (err) {
      setImageError(messageOf(err));
    }
  }

  function pick(e: ChangeEvent<HTMLInputElement>) {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (!file) return;
    if (file.size > 1024 * 1024) {
      setImageError('Choose an image smaller than 1 MB.');
      return;
    }
    const reader = new FileReader();
    reader.onload = () => void setImage(String(reader.result));
    reader.onerror = () => setImageError('The file could not be read.');
    reader.readAsDataURL(file);
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    setSaved('');
    setBusy(true);
    try {
      await post('/api/v1/auths/update/profile', { name });
      await refresh();
      setSaved('Profile saved.');
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <PageTitle>Profile</PageTitle>
      <div className="avatar-row">
        <img
          className="avatar"
          src={`/api/v1/users/${encodeURIComponent(me.id)}/profile-image?v=${imageVersion}`}
          alt="Your profile image"
          width={72}
          height={72}
        />
        <div className="stack tight">
          <input
            ref={fileRef}
            id="profile-image-file"
            type="file"
            accept="image/png,image/jpeg,image/webp,image/gif"
            className="sr-only"
            onChange={pick}
          />
          <div className="row tight">
            <button type="button" className="btn btn-small" onClick={() => fileRef.current?.click()}>
              Change image
            </button>
            <button type="button" className="btn btn-small btn-ghost" onClick={() => void setImage(null)}>
              Remove image
            </button>
          </div>
          <Alert>{imageError}</Alert>
        </div>
      </div>
      <form onSubmit={submit} className="stack narrow">
        <Field
          label="Name"
          name="name"
          autoComplete="name"
          required
          value={name}
          onChange={(e) => setName(e.target.value)}
        />
        <Field
          label="E-mail"
          name="email"
          type="email"
          value={me.email}
          readOnly
          hint="Ask an administrator to change it."
        />
        <Alert>{error}</Alert>
        <Alert kind="success">{saved}</Alert>
        <div className="row">
          <button type="submit" className="btn btn-primary" disabled={busy || name.trim() === '' || name === me.name}>
            Save profile
          </button>
        </div>
      </form>
      <dl className="facts">
        <dt>Role</dt>
        <dd>{me.role}</dd>
        <dt>Member since</dt>
        <dd>{formatTime(me.created_at)}</dd>
      </dl>
      <h2>Appearance</h2>
      <div className="narrow">
        <ThemeSelect />
      </div>
    </>
  );
}
