import { Module } from '@nestjs/common';
import { AuthModule } from '@rsa/auth';
import { CatalogueAdminService } from './catalogue-admin.service';
import { CatalogueService } from './catalogue.service';
import { ResourceDiscoveryService } from './resource-discovery.service';
import { ResourceProxyService } from './resource-proxy.service';

/** The catalogue, aliases, discovery and the upstream proxy. Knows nothing of who may call what. */
@Module({
  imports: [AuthModule],
  providers: [CatalogueService, CatalogueAdminService, ResourceDiscoveryService, ResourceProxyService],
  exports: [CatalogueService, CatalogueAdminService, ResourceDiscoveryService, ResourceProxyService],
})
export class ResourcesModule {}
