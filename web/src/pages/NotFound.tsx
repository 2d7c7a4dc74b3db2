import { Link } from '../lib/router';
import { PageTitle } from '../components/ui';

export function NotFound() {
  return (
    <div className="page">
      <PageTitle>Page not found</PageTitle>
      <p>
        There is nothing at this address. <Link to="/chat">Go to the chat</Link>.
      </p>
    </div>
  );
}
