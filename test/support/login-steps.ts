import * as oidc from 'openid-client';
import { TestBrowser } from './browser';
import type { TestStack } from './stack';
import { discoverRsa } from './wallet';

/** Where a walk through redirects ended: a redirect to the stop URL, or a page that is not a redirect. */
export type WalkResult =
  | { kind: 'redirect'; location: URL }
  | { kind: 'page'; url: string; status: number; headers: Headers; body: string };

/**
 * Follows redirects from `url` (GET) until one points at `stopAt` (not requested) or a response is
 * not a redirect (its body read). The first request may carry `init` (e.g. a form POST).
 */
export async function walk(browser: TestBrowser, url: string, stopAt: string, init?: RequestInit): Promise<WalkResult> {
  let next: { url: string; init?: RequestInit } = { url, init };
  for (let hops = 0; hops < 30; hops++) {
    const res = await browser.request(next.url, next.init);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      const target = new URL(location, next.url);
      if (target.href.startsWith(stopAt)) return { kind: 'redirect', location: target };
      next = { url: target.href };
      continue;
    }
    return { kind: 'page', url: next.url, status: res.status, headers: res.headers, body: await res.text() };
  }
  throw new Error('too many redirects');
}

/** A Wallet authorization request at the RSA, as loginAs builds it, before the browser follows it. */
export interface PendingAuthorization {
  configuration: oidc.Configuration;
  browser: TestBrowser;
  url: URL;
  state: string;
  codeVerifier: string;
}

export async function beginAuthorization(
  stack: TestStack,
  options: { scope?: string; browser?: TestBrowser } = {},
): Promise<PendingAuthorization> {
  const configuration = await discoverRsa(stack);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(configuration, {
    redirect_uri: stack.wallet.redirectUri,
    scope: options.scope ?? 'openid profile email',
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
  });
  return { configuration, browser: options.browser ?? new TestBrowser(), url, state, codeVerifier };
}

/** The dev upstream's login page: its URL and the two form actions (absolute). */
export interface UpstreamLoginPage {
  url: string;
  status: number;
  body: string;
  loginAction: string;
  abortAction: string;
}

export function parseUpstreamLoginPage(page: { url: string; status: number; body: string }): UpstreamLoginPage {
  const login = /<form method="post" action="([^"]*\/login)"/.exec(page.body);
  const abort = /<form method="post" action="([^"]*\/abort)"/.exec(page.body);
  if (!login || !abort) throw new Error(`not the upstream login page (HTTP ${page.status}): ${page.body.slice(0, 300)}`);
  const absolute = (action: string) => new URL(action.replace(/&amp;/g, '&'), page.url).href;
  return { ...page, loginAction: absolute(login[1]), abortAction: absolute(abort[1]) };
}

/** Starts the authorization and follows it to the upstream's login form. */
export async function reachUpstreamLogin(stack: TestStack, pending: PendingAuthorization): Promise<UpstreamLoginPage> {
  const result = await walk(pending.browser, pending.url.href, stack.wallet.redirectUri);
  if (result.kind !== 'page') throw new Error(`expected the upstream login page, was redirected to ${result.location.href}`);
  return parseUpstreamLoginPage(result);
}

/** Form-encoded POST init. */
export function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

/** True when a response body shows signs of a stack trace or server file paths. */
export function looksLikeStackTrace(body: string): boolean {
  return /\n\s*at \S+.*\(|\bat (?:async )?\S+ \(|\.(?:ts|js):\d+:\d+|node_modules|\/work\/|\/src\/|Error: .*\n\s+at /.test(body);
}
