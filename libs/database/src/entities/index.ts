import { AccountEntity } from './account.entity';
import { AuditEventEntity } from './audit-event.entity';
import { OAuthClientEntity } from './oauth-client.entity';
import { OidcKeyEntity } from './oidc-key.entity';
import { OidcPayloadEntity } from './oidc-payload.entity';
import { UpstreamTokenEntity } from './upstream-token.entity';
import { GenericResourceEntity } from './generic-resource.entity';
import { IdempotencyKeyEntity } from './idempotency-key.entity';
import { RateLimitBucketEntity } from './rate-limit-bucket.entity';
import { GenericResourceAliasEntity } from './generic-resource-alias.entity';
import { GenericResourceAliasScopeEntity } from './generic-resource-alias-scope.entity';
import { GenericResourceAuthorizationEntity } from './generic-resource-authorization.entity';
import { GenericResourceAuthorizationScopeEntity } from './generic-resource-authorization-scope.entity';

export * from './account.entity';
export * from './audit-event.entity';
export * from './oauth-client.entity';
export * from './oidc-key.entity';
export * from './oidc-payload.entity';
export * from './upstream-token.entity';
export * from './generic-resource.entity';
export * from './idempotency-key.entity';
export * from './rate-limit-bucket.entity';
export * from './generic-resource-alias.entity';
export * from './generic-resource-alias-scope.entity';
export * from './generic-resource-authorization.entity';
export * from './generic-resource-authorization-scope.entity';

export const ENTITIES = [
  AccountEntity,
  UpstreamTokenEntity,
  AuditEventEntity,
  OidcPayloadEntity,
  OAuthClientEntity,
  OidcKeyEntity,
  GenericResourceEntity,
  GenericResourceAliasEntity,
  GenericResourceAliasScopeEntity,
  GenericResourceAuthorizationEntity,
  GenericResourceAuthorizationScopeEntity,
  IdempotencyKeyEntity,
  RateLimitBucketEntity,
];
