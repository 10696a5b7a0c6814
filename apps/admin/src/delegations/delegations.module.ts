import { Module } from '@nestjs/common';
import { DelegationModule } from '@rsa/delegation';
import { GenericResourceAuthorizationScopesController } from './generic-resource-authorization-scopes.controller';
import { GenericResourceAuthorizationsController } from './generic-resource-authorizations.controller';

/** Admin: delegations (generic resource authorizations) and their granted scopes, under the owners' rules. */
@Module({
  imports: [DelegationModule],
  controllers: [GenericResourceAuthorizationsController, GenericResourceAuthorizationScopesController],
})
export class AdminDelegationsModule {}
