import * as oidc from 'openid-client';
import type { TestStack } from './stack';
import { TestBrowser } from './browser';
import { recordSecret } from './secret-registry';

export interface WalletSession {
  configuration: oidc.Configuration;
  tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;
  browser: TestBrowser;
}

/** The Wallet's view of the RSA: openid-client discovery with the test Wallet's credentials. */
export function discoverRsa(stack: TestStack): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(stack.issuer), stack.wallet.clientId, undefined, oidc.ClientSecretBasic(stack.wallet.clientSecret), {
    execute: [oidc.allowInsecureRequests],
  });
}

/**
 * The whole Wallet flow as a user would drive it: authorization request with PKCE at the RSA, the
 * redirect to the dev upstream, the login form, back through the RSA callback, then the code exchange.
 */
export async function loginAs(
  stack: TestStack,
  username: string,
  options: { scope?: string; browser?: TestBrowser; password?: string } = {},
): Promise<WalletSession> {
  const configuration = await discoverRsa(stack);
  const browser = options.browser ?? new TestBrowser();
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(configuration, {
    redirect_uri: stack.wallet.redirectUri,
    scope: options.scope ?? `openid profile email offline_access ${stack.config.scopes.related}`,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    prompt: 'consent',
  });
  const callback = await browser.authorize(url.href, stack.wallet.redirectUri, { username, password: options.password });
  const tokens = await oidc.authorizationCodeGrant(configuration, callback, { pkceCodeVerifier: codeVerifier, expectedState: state });
  for (const value of [tokens.access_token, tokens.refresh_token, tokens.id_token]) recordSecret(value);
  return { configuration, tokens, browser };
}
