import { MigrationInterface, QueryRunner } from 'typeorm';

/** The Resource Management API: catalogue, aliases, delegations and their scopes (generated from the entities). */

export class ResourceManagement1796417140613 implements MigrationInterface {
    name = 'ResourceManagement1796417140613'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`CREATE TABLE "generic_resource" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "identifier" character varying(64) NOT NULL, "name" character varying(255) NOT NULL, "description" character varying(2000), "path_template" character varying(512) NOT NULL, "discovery_path" character varying(512), "scopes" text array NOT NULL DEFAULT '{}', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "uq_generic_resource_identifier" UNIQUE ("identifier"), CONSTRAINT "PK_f12aa6284df4b31d1fceedd3dc6" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE TABLE "generic_resource_alias" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "owner_account_id" uuid NOT NULL, "generic_resource_id" uuid NOT NULL, "external_id" character varying(255) NOT NULL, "display_name" character varying(255) NOT NULL, "status" character varying(16) NOT NULL DEFAULT 'active', "last_seen_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "uq_alias_owner_resource_external" UNIQUE ("owner_account_id", "generic_resource_id", "external_id"), CONSTRAINT "PK_a87b36ffd4a46d1a2af363d0269" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE INDEX "ix_alias_generic_resource" ON "generic_resource_alias" ("generic_resource_id") `);
        await queryRunner.query(`CREATE INDEX "ix_alias_owner_status_id" ON "generic_resource_alias" ("owner_account_id", "status", "id") `);
        await queryRunner.query(`CREATE TABLE "generic_resource_alias_scope" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "alias_id" uuid NOT NULL, "scope" character varying(64) NOT NULL, CONSTRAINT "uq_alias_scope" UNIQUE ("alias_id", "scope"), CONSTRAINT "PK_731940b252810c950580f9bde20" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE TABLE "generic_resource_authorization" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "alias_id" uuid NOT NULL, "owner_account_id" uuid NOT NULL, "delegate_account_id" uuid, "delegate_email" character varying(320), "status" character varying(16) NOT NULL DEFAULT 'active', "expires_at" TIMESTAMP WITH TIME ZONE, "created_by" character varying(255) NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, "revoked_by" character varying(255), "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_38b95696671787d809690019602" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE UNIQUE INDEX "uq_authz_active_alias_email" ON "generic_resource_authorization" ("alias_id", "delegate_email") WHERE status = 'active' AND delegate_account_id IS NULL`);
        await queryRunner.query(`CREATE UNIQUE INDEX "uq_authz_active_alias_delegate" ON "generic_resource_authorization" ("alias_id", "delegate_account_id") WHERE status = 'active' AND delegate_account_id IS NOT NULL`);
        await queryRunner.query(`CREATE INDEX "ix_authz_pending_email" ON "generic_resource_authorization" ("delegate_email") WHERE status = 'active' AND delegate_account_id IS NULL`);
        await queryRunner.query(`CREATE INDEX "ix_authz_alias_status" ON "generic_resource_authorization" ("alias_id", "status") `);
        await queryRunner.query(`CREATE INDEX "ix_authz_owner_status" ON "generic_resource_authorization" ("owner_account_id", "status") `);
        await queryRunner.query(`CREATE INDEX "ix_authz_delegate_status" ON "generic_resource_authorization" ("delegate_account_id", "status") `);
        await queryRunner.query(`CREATE TABLE "generic_resource_authorization_scope" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "authorization_id" uuid NOT NULL, "scope" character varying(64) NOT NULL, CONSTRAINT "uq_authz_scope" UNIQUE ("authorization_id", "scope"), CONSTRAINT "PK_66af34fb32e5b94e5a450da450a" PRIMARY KEY ("id"))`);
        await queryRunner.query(`ALTER TABLE "account" ADD "resources_synced_at" TIMESTAMP WITH TIME ZONE`);
        await queryRunner.query(`ALTER TABLE "generic_resource_alias" ADD CONSTRAINT "fk_alias_owner" FOREIGN KEY ("owner_account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
        await queryRunner.query(`ALTER TABLE "generic_resource_alias" ADD CONSTRAINT "fk_alias_generic_resource" FOREIGN KEY ("generic_resource_id") REFERENCES "generic_resource"("id") ON DELETE RESTRICT ON UPDATE NO ACTION`);
        await queryRunner.query(`ALTER TABLE "generic_resource_alias_scope" ADD CONSTRAINT "fk_alias_scope_alias" FOREIGN KEY ("alias_id") REFERENCES "generic_resource_alias"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization" ADD CONSTRAINT "fk_authz_alias" FOREIGN KEY ("alias_id") REFERENCES "generic_resource_alias"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization" ADD CONSTRAINT "fk_authz_owner" FOREIGN KEY ("owner_account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization" ADD CONSTRAINT "fk_authz_delegate" FOREIGN KEY ("delegate_account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization_scope" ADD CONSTRAINT "fk_authz_scope_authorization" FOREIGN KEY ("authorization_id") REFERENCES "generic_resource_authorization"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization_scope" DROP CONSTRAINT "fk_authz_scope_authorization"`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization" DROP CONSTRAINT "fk_authz_delegate"`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization" DROP CONSTRAINT "fk_authz_owner"`);
        await queryRunner.query(`ALTER TABLE "generic_resource_authorization" DROP CONSTRAINT "fk_authz_alias"`);
        await queryRunner.query(`ALTER TABLE "generic_resource_alias_scope" DROP CONSTRAINT "fk_alias_scope_alias"`);
        await queryRunner.query(`ALTER TABLE "generic_resource_alias" DROP CONSTRAINT "fk_alias_generic_resource"`);
        await queryRunner.query(`ALTER TABLE "generic_resource_alias" DROP CONSTRAINT "fk_alias_owner"`);
        await queryRunner.query(`ALTER TABLE "account" DROP COLUMN "resources_synced_at"`);
        await queryRunner.query(`DROP TABLE "generic_resource_authorization_scope"`);
        await queryRunner.query(`DROP INDEX "public"."ix_authz_delegate_status"`);
        await queryRunner.query(`DROP INDEX "public"."ix_authz_owner_status"`);
        await queryRunner.query(`DROP INDEX "public"."ix_authz_alias_status"`);
        await queryRunner.query(`DROP INDEX "public"."ix_authz_pending_email"`);
        await queryRunner.query(`DROP INDEX "public"."uq_authz_active_alias_delegate"`);
        await queryRunner.query(`DROP INDEX "public"."uq_authz_active_alias_email"`);
        await queryRunner.query(`DROP TABLE "generic_resource_authorization"`);
        await queryRunner.query(`DROP TABLE "generic_resource_alias_scope"`);
        await queryRunner.query(`DROP INDEX "public"."ix_alias_owner_status_id"`);
        await queryRunner.query(`DROP INDEX "public"."ix_alias_generic_resource"`);
        await queryRunner.query(`DROP TABLE "generic_resource_alias"`);
        await queryRunner.query(`DROP TABLE "generic_resource"`);
    }

}
