/** HTML for the dev upstream's own interaction pages. Everything echoed goes through `escapeHtml`. */

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f4f5f7; color: #1f2328; margin: 0; }
  main { max-width: 380px; margin: 8vh auto; background: #fff; border-radius: 10px; padding: 28px 32px;
         box-shadow: 0 2px 12px rgba(0,0,0,.08); }
  h1 { font-size: 1.25rem; margin: 0 0 4px; }
  .badge { display: inline-block; font-size: .75rem; background: #fff3cd; color: #664d03; border-radius: 4px;
           padding: 2px 8px; margin-bottom: 16px; }
  label { display: block; font-size: .875rem; margin: 12px 0 4px; }
  input[type=text], input[type=password] { width: 100%; box-sizing: border-box; padding: 8px 10px;
         border: 1px solid #c9ced6; border-radius: 6px; font-size: 1rem; }
  button { margin-top: 16px; width: 100%; padding: 9px; border-radius: 6px; border: 0; font-size: 1rem; cursor: pointer; }
  .primary { background: #0b5fff; color: #fff; }
  .secondary { background: transparent; color: #57606a; border: 1px solid #c9ced6; }
  .error { background: #ffebe9; color: #82071e; border-radius: 6px; padding: 8px 10px; font-size: .875rem; margin-top: 12px; }
  .hint { color: #57606a; font-size: .8rem; margin-top: 18px; }
  code { background: #f0f1f3; padding: 0 4px; border-radius: 3px; }
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<div class="badge">Dev upstream — development only</div>
${body}
</main>
</body>
</html>`;
}

export interface LoginPageInput {
  uid: string;
  clientId: string;
  username?: string;
  error?: string;
  /** user names shown as a hint (password = user name) */
  usernames: string[];
}

export function loginPage(input: LoginPageInput): string {
  const uid = encodeURIComponent(input.uid);
  const error = input.error ? `<div class="error" role="alert">${escapeHtml(input.error)}</div>` : '';
  const hint = input.usernames.map((u) => `<code>${escapeHtml(u)}</code>`).join(', ');
  return page(
    'Sign in',
    `<p>to continue to <strong>${escapeHtml(input.clientId)}</strong></p>
${error}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" required autofocus value="${escapeHtml(input.username)}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button class="primary" type="submit">Sign in</button>
</form>
<form method="post" action="/interaction/${escapeHtml(uid)}/abort">
  <button class="secondary" type="submit">Cancel</button>
</form>
<p class="hint">Test users: ${hint}. The password is the user name.</p>`,
  );
}

export function errorPage(message: string): string {
  return page('Something went wrong', `<div class="error" role="alert">${escapeHtml(message)}</div>`);
}

export function messagePage(title: string, message: string): string {
  return page(title, `<p>${escapeHtml(message)}</p>`);
}

/** `form` is oidc-provider's own hidden logout form (with its xsrf token); the buttons submit it. */
export function logoutPage(form: string): string {
  return page(
    'Sign out',
    `<p>Sign out of the dev upstream?</p>
${form}
<button class="primary" autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button class="secondary" type="submit" form="op.logoutForm">No, stay signed in</button>`,
  );
}
