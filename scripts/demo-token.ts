/**
 * `npm run demo:token -- <user> [rsa-url]`: signs a demo user in through the whole Wallet flow against a
 * running `npm start` (demo Wallet client, dev upstream login form) and prints the RSA access token.
 * DEVELOPMENT ONLY: it types the demo password (= user name) into the dev upstream's form, exactly as
 * a person would in the browser.
 */
import { createHash, randomBytes } from 'node:crypto';

const user = process.argv[2];
const rsa = (process.argv[3] ?? process.env.RSA_ISSUER ?? 'http://localhost:3000').replace(/\/$/, '');
const client = { id: 'demo-wallet', secret: 'demo-wallet-secret', redirectUri: 'http://localhost:8080/callback' };

async function main(): Promise<void> {
  if (!user) throw new Error('usage: npm run demo:token -- <alice|bob|carol> [rsa-url]');
  const cookies = new Map<string, string>();
  const request = async (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookies.size) headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return res;
  };

  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${rsa}/oidc/auth`);
  authorize.search = new URLSearchParams({
    client_id: client.id,
    response_type: 'code',
    scope: 'openid profile email offline_access fpx_rot delegations',
    redirect_uri: client.redirectUri,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    prompt: 'consent',
  }).toString();

  let next: { url: string; init?: RequestInit } = { url: authorize.href };
  let code: string | null = null;
  for (let hop = 0; hop < 30 && !code; hop++) {
    const res = await request(next.url, next.init);
    const location = res.headers.get('location');
    if (location) {
      const target = new URL(location, next.url);
      if (target.href.startsWith(client.redirectUri)) {
        code = target.searchParams.get('code');
        if (!code) throw new Error(`login failed: ${target.searchParams.get('error')} ${target.searchParams.get('error_description') ?? ''}`);
      }
      next = { url: target.href };
      continue;
    }
    const body = await res.text();
    const form = /<form method="post" action="([^"]*\/login)"/.exec(body);
    if (!form) throw new Error(`unexpected page at ${next.url} (HTTP ${res.status})`);
    next = {
      url: new URL(form[1], next.url).href,
      init: { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username: user, password: user }).toString() },
    };
  }
  if (!code) throw new Error('login did not finish');
  const token = await fetch(`${rsa}/oidc/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirectUri, code_verifier: verifier }).toString(),
  });
  const tokens = (await token.json()) as { access_token?: string; error?: string };
  if (!tokens.access_token) throw new Error(`token exchange failed: ${tokens.error}`);
  console.log(tokens.access_token);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
