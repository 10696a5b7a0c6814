import { Module } from '@nestjs/common';
import { DelegationModule } from '@rsa/delegation';
import { ResourcesModule } from '@rsa/resources';
import { GenericResourceAliasScopesController } from './generic-resource-alias-scopes.controller';
import { GenericResourceAliasesController } from './generic-resource-aliases.controller';
import { GenericResourcesController } from './generic-resources.controller';

/**
 * Admin: the resource catalogue — generic resources, aliases, alias scopes. DelegationModule is
 * imported too: its DelegationAdminService listens to alias changes (gone, deleted, scope taken
 * away) and ends or trims the delegations that hang on them in the same transaction.
 */
@Module({
  imports: [ResourcesModule, DelegationModule],
  controllers: [GenericResourcesController, GenericResourceAliasesController, GenericResourceAliasScopesController],
})
export class AdminCatalogueModule {}
