/**
 * Light/dark theme: follows prefers-color-scheme unless the user picked one. The choice (not a
 * credential) is kept in localStorage under `hridaai.theme`.
 */
export type ThemeChoice = 'system' | 'light' | 'dark';
const KEY = 'hridaai.theme';

export function storedTheme(): ThemeChoice {
  try {
    const v = window.localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

export function systemPrefersDark(): boolean {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false;
}

export function effectiveTheme(choice: ThemeChoice = storedTheme()): 'light' | 'dark' {
  return choice === 'system' ? (systemPrefersDark() ? 'dark' : 'light') : choice;
}

export function applyTheme(choice: ThemeChoice = storedTheme()): void {
  const root = document.documentElement;
  if (choice === 'system') delete root.dataset.theme;
  else root.dataset.theme = choice;
}

export function setTheme(choice: ThemeChoice): void {
  try {
    if (choice === 'system') window.localStorage.removeItem(KEY);
    else window.localStorage.setItem(KEY, choice);
  } catch {
    // Storage disabled: the choice lasts for this page only.
  }
  applyTheme(choice);
  window.dispatchEvent(new Event('hridaai-theme'));
}
