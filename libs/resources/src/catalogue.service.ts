import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { GenericResourceEntity } from '@rsa/database';

export interface GenericResourceDefinition {
  identifier: string;
  name: string;
  description?: string | null;
  pathTemplate: string;
  discoveryPath?: string | null;
  scopes: string[];
}

/** The resource catalogue: the kinds of resource the Resource Server offers. */
@Injectable()
export class CatalogueService {
  constructor(@InjectRepository(GenericResourceEntity) private readonly resources: Repository<GenericResourceEntity>) {}

  /** Creates or updates a kind of resource by its identifier. */
  async upsert(definition: GenericResourceDefinition): Promise<GenericResourceEntity> {
    await this.resources.upsert(
      {
        identifier: definition.identifier,
        name: definition.name,
        description: definition.description ?? null,
        pathTemplate: definition.pathTemplate,
        discoveryPath: definition.discoveryPath ?? null,
        scopes: [...new Set(definition.scopes)],
      },
      ['identifier'],
    );
    return this.resources.findOneByOrFail({ identifier: definition.identifier });
  }

  withDiscovery(): Promise<GenericResourceEntity[]> {
    return this.resources.createQueryBuilder('r').where('r.discovery_path IS NOT NULL').orderBy('r.identifier').getMany();
  }
}

/** The demo catalogue `npm start` and the tests use with the dev upstream's bank-style accounts. */
export const DEMO_ACCOUNT_RESOURCE: GenericResourceDefinition = {
  identifier: 'account',
  name: 'Bank account',
  description: 'A bank-style account at the upstream resource API: details, transactions and transfers.',
  pathTemplate: '/accounts/{id}',
  discoveryPath: '/accounts',
  scopes: ['read', 'write'],
};
