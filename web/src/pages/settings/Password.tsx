import { useState } from 'react';
import { useSession } from '../../components/session';
import { PasswordForm } from '../../components/PasswordForm';
import { Alert, PageTitle } from '../../components/ui';

export function PasswordSection() {
  const { config } = useSession();
  const [done, setDone] = useState('');
  return (
    <>
      <PageTitle>Password</PageTitle>
      <p>Changing your password signs out every other session of your account.</p>
      <Alert kind="success">{done}</Alert>
      <PasswordForm
        hint={config.password_hint}
        onChanged={(n) =>
          setDone(n > 0 ? `Password changed. ${n} other session(s) were signed out.` : 'Password changed.')
        }
      />
    </>
  );
}
