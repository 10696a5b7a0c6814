import { AccountEntity } from './account.entity';
import { AuditEventEntity } from './audit-event.entity';
import { OAuthClientEntity } from './oauth-client.entity';
import { OidcKeyEntity } from './oidc-key.entity';
import { OidcPayloadEntity } from './oidc-payload.entity';
import { UpstreamTokenEntity } from './upstream-token.entity';

export * from './account.entity';
export * from './audit-event.entity';
export * from './oauth-client.entity';
export * from './oidc-key.entity';
export * from './oidc-payload.entity';
export * from './upstream-token.entity';

export const ENTITIES = [
  AccountEntity,
  UpstreamTokenEntity,
  AuditEventEntity,
  OidcPayloadEntity,
  OAuthClientEntity,
  OidcKeyEntity,
];
