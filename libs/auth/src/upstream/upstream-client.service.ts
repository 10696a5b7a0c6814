import { Injectable, Logger } from '@nestjs/common';
import { AsyncLocalStorage } from 'node:async_hooks';
import * as oidc from 'openid-client';
import { RsaConfig } from '@rsa/config';
import { fetchWithTimeout, isTimeoutError, ResponseTooLargeError, RsaMetrics } from '@rsa/common';
import { UpstreamOAuthError, UpstreamSubjectMismatchError, UpstreamTimeoutError, UpstreamUnavailableError } from './upstream-errors';

export interface UpstreamTokenSet {
  accessToken: string;
  refreshToken?: string;
  idToken?: string;
  scope?: string;
  expiresIn?: number;
  /** `refresh_expires_in`, sent by some providers (Keycloak); not part of RFC 6749. */
  refreshExpiresIn?: number;
}

export interface UpstreamLoginRequest {
  url: URL;
  state: string;
  nonce: string;
  codeVerifier: string;
}

export interface UpstreamLoginResult {
  tokens: UpstreamTokenSet;
  /** Claims of the validated ID token merged with the upstream userinfo (userinfo wins). */
  claims: Record<string, unknown> & { sub: string };
}

/** Options of one upstream call. */
export interface UpstreamCallOptions {
  /** Epoch milliseconds the call must finish by (its timeout is the smaller of this and UPSTREAM_TIMEOUT_MS). */
  deadline?: number;
}

/** An HTTP status the upstream client never accepts (5xx, 429, 3xx), raised inside customFetch. */
class RejectedStatus extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(status >= 300 && status < 400 ? `redirect (HTTP ${status}) not followed` : `HTTP ${status}`);
    this.name = 'RejectedStatus';
  }
}

/**
 * The RSA as a confidential OAuth client of the upstream provider (openid-client). Every call is
 * bounded by UPSTREAM_TIMEOUT_MS (or the caller's shorter deadline); discovery is cached and
 * retried on the next call if it failed. Every response passes customFetch, which never follows a
 * redirect, reads at most UPSTREAM_MAX_RESPONSE_BYTES of body (aborting beyond it), and turns
 * 5xx/429 answers (with their Retry-After) and redirects into UpstreamUnavailableError.
 */
@Injectable()
export class UpstreamClient {
  private readonly logger = new Logger(UpstreamClient.name);
  private configuration?: Promise<oidc.Configuration>;
  private readonly fetch: typeof fetch;
  /** The deadline of the call in progress (per async context), read by customFetch. */
  private readonly deadline = new AsyncLocalStorage<number | undefined>();

  constructor(
    private readonly config: RsaConfig,
    private readonly metrics: RsaMetrics,
  ) {
    const bounded = fetchWithTimeout(config.upstream.timeoutMs, {
      maxResponseBytes: config.upstreamMaxResponseBytes,
      remainingMs: () => {
        const deadline = this.deadline.getStore();
        return deadline === undefined ? undefined : deadline - Date.now();
      },
    });
    this.fetch = async (input, init = {}) => {
      // oauth4webapi asks for `manual` already; never leave it to a default that follows.
      const response = await bounded(input, { ...init, redirect: 'manual' });
      if ((response.status >= 300 && response.status < 400) || response.status >= 500 || response.status === 429) {
        throw new RejectedStatus(response.status, parseRetryAfter(response.headers.get('retry-after')));
      }
      return response;
    };
  }

  get callbackUrl(): string {
    return `${this.config.issuer}/interaction/callback`;
  }

  /** Discovery document and client settings, fetched once. */
  async getConfiguration(): Promise<oidc.Configuration> {
    if (!this.configuration) {
      const { upstream } = this.config;
      const auth =
        upstream.tokenAuthMethod === 'client_secret_post'
          ? oidc.ClientSecretPost(upstream.clientSecret)
          : oidc.ClientSecretBasic(upstream.clientSecret);
      this.configuration = this.timed('discovery', () =>
        oidc
          .discovery(new URL(upstream.issuer), upstream.clientId, undefined, auth, {
            // Plain http only for http issuers (development, tests); never relaxed for https.
            execute: this.config.insecureUpstream ? [oidc.allowInsecureRequests] : [],
            [oidc.customFetch]: this.fetch,
            timeout: Math.ceil(upstream.timeoutMs / 1000),
          })
          .then((configuration) => {
            configuration[oidc.customFetch] = this.fetch;
            return configuration;
          })
          .catch((error: unknown) => {
            throw this.translate('discovery', error);
          }),
      ).catch((error: unknown) => {
        this.configuration = undefined;
        throw error;
      });
    }
    return this.configuration;
  }

  async buildLoginRequest(): Promise<UpstreamLoginRequest> {
    const configuration = await this.getConfiguration();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: this.callbackUrl,
      scope: this.config.upstream.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      // Without prompt=consent, providers following OIDC Core §11 drop offline_access: no refresh token.
      ...(this.config.upstream.scopes.split(' ').includes('offline_access') ? { prompt: 'consent' } : {}),
    });
    return { url, state, nonce, codeVerifier };
  }

  /** Exchanges the authorization code (state, nonce and PKCE checked) and reads the user's claims. */
  async completeLogin(
    currentUrl: URL,
    checks: { state: string; nonce: string; codeVerifier: string },
  ): Promise<UpstreamLoginResult> {
    const configuration = await this.getConfiguration();
    const response = await this.timed('authorization_code', () =>
      oidc
        .authorizationCodeGrant(configuration, currentUrl, {
          pkceCodeVerifier: checks.codeVerifier,
          expectedState: checks.state,
          expectedNonce: checks.nonce,
          idTokenExpected: true,
        })
        .catch((error: unknown) => {
          throw this.translate('authorization code exchange', error);
        }),
    );
    const idClaims = response.claims();
    if (!idClaims) throw new UpstreamUnavailableError('authorization code exchange', 'no ID token');
    const userinfo = await this.fetchUserInfo(response.access_token, idClaims.sub);
    return {
      tokens: toTokenSet(response),
      claims: { ...(idClaims as Record<string, unknown>), ...userinfo, sub: idClaims.sub },
    };
  }

  async refresh(refreshToken: string, options: UpstreamCallOptions = {}): Promise<UpstreamTokenSet> {
    const configuration = await this.getConfiguration();
    return this.timed('refresh', async () => {
      try {
        return toTokenSet(await this.deadline.run(options.deadline, () => oidc.refreshTokenGrant(configuration, refreshToken)));
      } catch (error) {
        throw this.translate('refresh', error);
      }
    });
  }

  /** The upstream userinfo; the `sub` must match (OIDC Core §5.3.2), else this throws. */
  async fetchUserInfo(accessToken: string, expectedSub: string): Promise<Record<string, unknown> & { sub: string }> {
    const configuration = await this.getConfiguration();
    return this.timed('userinfo', async () => {
      try {
        return (await oidc.fetchUserInfo(configuration, accessToken, expectedSub)) as Record<string, unknown> & { sub: string };
      } catch (error) {
        throw this.translate('userinfo', error);
      }
    });
  }

  /** RFC 7009 revocation, where the upstream offers it; returns false when it does not. */
  async revoke(token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
    const configuration = await this.getConfiguration();
    if (!configuration.serverMetadata().revocation_endpoint) return false;
    return this.timed('revocation', async () => {
      try {
        await oidc.tokenRevocation(configuration, token, { token_type_hint: hint });
        return true;
      } catch (error) {
        throw this.translate('revocation', error);
      }
    });
  }

  /** Observes the call's latency (rsa_upstream_request_duration_seconds); errors are already translated. */
  private async timed<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const end = this.metrics.upstreamRequests.startTimer({ operation });
    try {
      const result = await call();
      end({ outcome: 'success' });
      return result;
    } catch (error) {
      end({
        outcome:
          error instanceof UpstreamOAuthError ? 'oauth_error' : error instanceof UpstreamTimeoutError ? 'timeout' : 'error',
      });
      throw error;
    }
  }

  /** Turns openid-client errors into ours; never copies a token into the message. */
  private translate(what: string, error: unknown): Error {
    if (error instanceof UpstreamOAuthError || error instanceof UpstreamTimeoutError || error instanceof UpstreamUnavailableError) {
      return error;
    }
    // Raised in customFetch; openid-client wraps them ("something went wrong", cause: ours).
    const rejected = findCause(error, RejectedStatus);
    if (rejected) {
      this.logger.warn(`upstream ${what} failed: ${rejected.message}`);
      return new UpstreamUnavailableError(what, rejected.message, { status: rejected.status, retryAfterMs: rejected.retryAfterMs });
    }
    const tooLarge = findCause(error, ResponseTooLargeError);
    if (tooLarge) {
      this.logger.warn(`upstream ${what} failed: ${tooLarge.message}`);
      return new UpstreamUnavailableError(what, tooLarge.message);
    }
    if (isTimeoutError(error)) return new UpstreamTimeoutError(what, this.config.upstream.timeoutMs);
    // openid-client wraps oauth4webapi's error: the compared attribute is on the cause's cause.
    const detail = error as { code?: string; cause?: { attribute?: string; cause?: { attribute?: string } } };
    if (detail.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && (detail.cause?.attribute ?? detail.cause?.cause?.attribute) === 'sub') {
      return new UpstreamSubjectMismatchError(what);
    }
    if (error instanceof oidc.ResponseBodyError) {
      return new UpstreamOAuthError(error.error, error.status, error.error_description);
    }
    if (error instanceof oidc.AuthorizationResponseError) {
      return new UpstreamOAuthError(error.error, undefined, error.error_description);
    }
    // openid-client's network errors say "something went wrong"; the cause (ECONNREFUSED, …) is what helps.
    const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
    const message = `${(error as Error)?.message ?? String(error)}${cause ? ` (${cause.code ?? cause.message})` : ''}`;
    this.logger.warn(`upstream ${what} failed: ${message}`);
    return new UpstreamUnavailableError(what, message);
  }
}

/** The first error of class `type` in the cause chain of `error` (itself included). */
function findCause<T extends Error>(error: unknown, type: new (...args: never[]) => T): T | undefined {
  let e: unknown = error;
  for (let depth = 0; e && depth < 6; depth++) {
    if (e instanceof type) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date; undefined when absent or unreadable. */
function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function toTokenSet(response: oidc.TokenEndpointResponse): UpstreamTokenSet {
  const extra = response as unknown as { refresh_expires_in?: unknown };
  return {
    accessToken: response.access_token,
    refreshToken: response.refresh_token,
    idToken: response.id_token,
    scope: response.scope,
    expiresIn: typeof response.expires_in === 'number' ? response.expires_in : undefined,
    refreshExpiresIn: typeof extra.refresh_expires_in === 'number' ? extra.refresh_expires_in : undefined,
  };
}
