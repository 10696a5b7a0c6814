import { Injectable } from '@nestjs/common';
import { DomainError } from '@rsa/common';
import { AccountEntity } from '@rsa/database';
import { AccountService } from '../accounts/account.service';
import { TokenCipher } from '../crypto/token-cipher';
import { UpstreamClient } from './upstream-client.service';

/** How long a user may take at the upstream login page. */
const LOGIN_STATE_TTL_MS = 10 * 60 * 1000;
const STATE_AAD = 'rsa.upstream-login-state';

interface LoginState {
  uid: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  exp: number;
}

export class LoginStateError extends DomainError {
  constructor(
    message: string,
    /** True when the cookie is fine but the callback is not this login's: keep the login going. */
    readonly foreignCallback = false,
  ) {
    super('LOGIN.INVALID_STATE', message);
  }
}

/**
 * The upstream leg of a login. The state, nonce, PKCE verifier and interaction uid travel in a sealed
 * (AES-GCM, httpOnly) cookie scoped to the callback path: nothing is kept in process memory, so the
 * callback may land on any instance.
 */
@Injectable()
export class FederatedLoginService {
  constructor(
    private readonly upstream: UpstreamClient,
    private readonly cipher: TokenCipher,
    private readonly accounts: AccountService,
  ) {}

  async start(uid: string): Promise<{ redirectTo: string; sealedState: string; maxAgeMs: number }> {
    const request = await this.upstream.buildLoginRequest();
    const state: LoginState = {
      uid,
      state: request.state,
      nonce: request.nonce,
      codeVerifier: request.codeVerifier,
      exp: Date.now() + LOGIN_STATE_TTL_MS,
    };
    return {
      redirectTo: request.url.href,
      sealedState: this.cipher.encrypt(JSON.stringify(state), STATE_AAD),
      maxAgeMs: LOGIN_STATE_TTL_MS,
    };
  }

  /** The interaction uid a sealed state belongs to (for error redirects), or undefined. */
  peekUid(sealedState: string | undefined): string | undefined {
    try {
      return sealedState ? this.unseal(sealedState).uid : undefined;
    } catch {
      return undefined;
    }
  }

  async finish(
    sealedState: string | undefined,
    callbackUrl: URL,
    context: { requestId?: string; clientId?: string },
  ): Promise<{ uid: string; account: AccountEntity }> {
    if (!sealedState) throw new LoginStateError('the login state cookie is missing (expired, or cookies are blocked)');
    const state = this.unseal(sealedState);
    if (callbackUrl.searchParams.get('state') !== state.state) {
      throw new LoginStateError('the state returned by the upstream does not match this login', true);
    }
    const { tokens, claims } = await this.upstream.completeLogin(callbackUrl, state);
    const account = await this.accounts.recordLogin(claims, tokens, context);
    return { uid: state.uid, account };
  }

  private unseal(sealed: string): LoginState {
    let state: LoginState;
    try {
      state = JSON.parse(this.cipher.decrypt(sealed, STATE_AAD)) as LoginState;
    } catch {
      throw new LoginStateError('the login state cookie is not valid');
    }
    if (state.exp < Date.now()) throw new LoginStateError('the login took too long; start again');
    return state;
  }
}
