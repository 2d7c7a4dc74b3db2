import type { User } from '../../platform/db/types.js';

/** The only shape in which a user leaves the server: an explicit allowlist (never the hash). */
export function presentUser(u: User) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    active: u.active === 1,
    profile_image_url: u.profile_image_url,
    created_at: u.created_at,
    updated_at: u.updated_at,
    last_active_at: u.last_active_at,
  };
}
