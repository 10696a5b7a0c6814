import { MigrationInterface, QueryRunner } from "typeorm";

/**
 * ix_authz_delegate_status gains alias_id as its last column (and the name to say so): the caller's
 * delegations in alias id order, so that a page of `GET /resources` (AccessPolicy.delegated) reads
 * only that page of them instead of every delegation the caller holds. Its prefix serves every query
 * the old index served. (Generated from the entity.)
 */
export class DelegatedPageIndex1796431000000 implements MigrationInterface {
    name = 'DelegatedPageIndex1796431000000'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP INDEX "public"."ix_authz_delegate_status"`);
        await queryRunner.query(`CREATE INDEX "ix_authz_delegate_status_alias" ON "generic_resource_authorization" ("delegate_account_id", "status", "alias_id") `);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP INDEX "public"."ix_authz_delegate_status_alias"`);
        await queryRunner.query(`CREATE INDEX "ix_authz_delegate_status" ON "generic_resource_authorization" ("delegate_account_id", "status") `);
    }

}
