import { Module } from '@nestjs/common';
import { RsaMetrics } from '@rsa/common';
import { AccountService } from './accounts/account.service';
import { RsaBearerGuard } from './bearer/rsa-bearer.guard';
import { BearerTokenValidator } from './bearer/bearer-token-validator';
import { TokenCipher } from './crypto/token-cipher';
import { ClientRegistry } from './oidc/client-registry.service';
import { oidcProviderFactory } from './oidc/oidc-provider.factory';
import { OidcPayloadPurger } from './oidc/oidc-payload-purger.service';
import { OidcKeyStore } from './oidc/oidc-keys.service';
import { FederatedLoginService } from './upstream/federated-login.service';
import { UpstreamClient } from './upstream/upstream-client.service';
import { TokenHealthService } from './health/token-health.service';
import { UpstreamTokenVault } from './vault/upstream-token-vault.service';

/** Identity core: the RSA's OP, the upstream client, the token vault and bearer authentication. */
@Module({
  providers: [
    RsaMetrics,
    TokenCipher,
    UpstreamClient,
    UpstreamTokenVault,
    TokenHealthService,
    AccountService,
    FederatedLoginService,
    ClientRegistry,
    OidcKeyStore,
    oidcProviderFactory,
    OidcPayloadPurger,
    BearerTokenValidator,
    RsaBearerGuard,
  ],
  exports: [
    RsaMetrics,
    TokenCipher,
    UpstreamClient,
    UpstreamTokenVault,
    TokenHealthService,
    AccountService,
    FederatedLoginService,
    ClientRegistry,
    oidcProviderFactory,
    OidcPayloadPurger,
    BearerTokenValidator,
    RsaBearerGuard,
  ],
})
export class AuthModule {}
