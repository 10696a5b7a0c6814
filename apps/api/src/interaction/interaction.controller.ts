import { Controller, Get, Inject, Logger, Param, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Provider } from 'oidc-provider';
import { FederatedLoginService, OIDC_PROVIDER, renderErrorPage, UpstreamOAuthError, LoginStateError } from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { DomainError } from '@rsa/common';

const STATE_COOKIE = '_rsa_upstream_login';
const CALLBACK_PATH = '/interaction/callback';

/**
 * The OP's login and consent interactions. Login is federated: the user is sent to the upstream
 * provider and comes back to `/interaction/callback`. Consent is granted here without a page: the
 * RSA's clients are first-party and may only request the scopes registered for them.
 */
@ApiExcludeController()
@Controller('interaction')
export class InteractionController {
  private readonly logger = new Logger(InteractionController.name);

  constructor(
    @Inject(OIDC_PROVIDER) private readonly provider: Provider,
    private readonly login: FederatedLoginService,
    private readonly config: RsaConfig,
  ) {}

  // Declared before ':uid' so that "callback" is never taken for an interaction id.
  @Get('callback')
  async callback(@Req() req: Request, @Res() res: Response): Promise<void> {
    const sealed = req.cookies?.[STATE_COOKIE] ?? readCookie(req, STATE_COOKIE);
    const url = new URL(req.originalUrl, this.config.issuer);
    const callbackUrl = new URL(`${this.config.issuer}${CALLBACK_PATH}${url.search}`);
    const uid = this.login.peekUid(sealed);

    // An error answer from the upstream goes through finish() too: its state (and issuer) are checked
    // like a success's, so a forged `?error=...` cannot cancel someone's login in progress.
    try {
      const interaction = uid ? await this.provider.Interaction.find(uid) : undefined;
      const { account } = await this.login.finish(sealed, callbackUrl, {
        requestId: req.requestId,
        clientId: interaction?.params.client_id as string | undefined,
      });
      if (!interaction) throw new DomainError('LOGIN.INVALID_STATE', 'the sign-in request expired; start again from the application');
      res.clearCookie(STATE_COOKIE, { path: CALLBACK_PATH });
      interaction.result = { login: { accountId: account.id } };
      await interaction.save(Math.max(1, (interaction.exp ?? 0) - Math.floor(Date.now() / 1000)));
      res.redirect(303, interaction.returnTo);
    } catch (error) {
      // A callback that is not this login's (wrong state) must not end the login in progress: a forged
      // top-level navigation would otherwise cancel the victim's sign-in. Every other outcome ends it.
      if (!(error instanceof LoginStateError && error.foreignCallback)) res.clearCookie(STATE_COOKIE, { path: CALLBACK_PATH });
      if (error instanceof DomainError && error.code === 'LOGIN.INVALID_STATE') {
        return this.errorPage(res, 400, 'invalid_request', error.message);
      }
      if (error instanceof UpstreamOAuthError && error.status === undefined && uid) {
        // The upstream answered the authorization request with an error (the user cancelled, or was
        // refused): tell the client (RFC 6749 §4.1.2.1).
        return this.finishWithError(res, uid, clientErrorFor(error.oauthError),
          callbackUrl.searchParams.get('error_description') ?? 'the upstream provider did not sign the user in');
      }
      this.logger.warn(`upstream login failed: ${(error as Error).message}`);
      const description =
        error instanceof UpstreamOAuthError ? `the upstream provider refused the sign-in (${error.oauthError})` : 'the upstream provider is not reachable';
      if (uid) return this.finishWithError(res, uid, 'temporarily_unavailable', description);
      return this.errorPage(res, 502, 'temporarily_unavailable', description);
    }
  }

  @Get(':uid')
  async interaction(@Param('uid') uid: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    let details: Awaited<ReturnType<Provider['interactionDetails']>>;
    try {
      details = await this.provider.interactionDetails(req, res);
    } catch {
      return this.errorPage(res, 400, 'invalid_request', 'this sign-in request has expired or is not valid; start again from the application');
    }
    if (details.uid !== uid) return this.errorPage(res, 400, 'invalid_request', 'interaction mismatch');

    if (details.prompt.name === 'login') {
      try {
        const start = await this.login.start(uid);
        res.cookie(STATE_COOKIE, start.sealedState, {
          path: CALLBACK_PATH,
          httpOnly: true,
          sameSite: 'lax',
          secure: this.config.issuer.startsWith('https://'),
          maxAge: start.maxAgeMs,
        });
        return res.redirect(303, start.redirectTo);
      } catch (error) {
        this.logger.warn(`cannot start upstream login: ${(error as Error).message}`);
        return this.finishWithError(res, uid, 'temporarily_unavailable', 'the upstream provider is not reachable');
      }
    }

    if (details.prompt.name === 'consent') {
      const grantId = await this.grantConsent(details);
      await this.provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    return this.errorPage(res, 400, 'invalid_request', `unsupported prompt ${details.prompt.name}`);
  }

  /** Grants what the client asked for; the OP already limited it to the client's registered scopes. */
  private async grantConsent(details: Awaited<ReturnType<Provider['interactionDetails']>>): Promise<string> {
    const { prompt, params, session } = details;
    const grant = details.grantId
      ? await this.provider.Grant.find(details.grantId)
      : new this.provider.Grant({ accountId: session!.accountId, clientId: params.client_id as string });
    if (!grant) throw new DomainError('LOGIN.INVALID_STATE', 'grant not found');
    const missing = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  private async finishWithError(res: Response, uid: string, error: string, description: string): Promise<void> {
    const interaction = await this.provider.Interaction.find(uid);
    if (!interaction) return this.errorPage(res, 400, error, description);
    interaction.result = { error, error_description: description };
    await interaction.save(Math.max(1, (interaction.exp ?? 0) - Math.floor(Date.now() / 1000)));
    res.redirect(303, interaction.returnTo);
  }

  private errorPage(res: Response, status: number, error: string, description: string): void {
    res.status(status).type('html').setHeader('Cache-Control', 'no-store').send(renderErrorPage('Sign-in error', error, description));
  }
}

/** The error the RSA's client gets for an upstream authorization error (RFC 6749 §4.1.2.1 codes). */
function clientErrorFor(upstreamError: string): string {
  if (upstreamError === 'access_denied') return 'access_denied';
  if (upstreamError === 'temporarily_unavailable' || upstreamError === 'server_error') return 'temporarily_unavailable';
  return 'login_required';
}

/** Reads one cookie without a cookie-parser dependency. */
function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) {
      const value = part.slice(index + 1).trim();
      try {
        return decodeURIComponent(value);
      } catch {
        return value; // malformed percent-encoding: not a sealed state, refused as such later (not a 500)
      }
    }
  }
  return undefined;
}
