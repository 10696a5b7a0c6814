import { MigrationInterface, QueryRunner } from 'typeorm';

/** Generated from the entities by `npm run migration:generate`, plus the append-only audit trigger. */

export class InitialSchema1796416253914 implements MigrationInterface {
    name = 'InitialSchema1796416253914'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`CREATE TABLE "account" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "provider" character varying(512) NOT NULL, "sub" character varying(255) NOT NULL, "email" character varying(320), "email_verified" boolean NOT NULL DEFAULT false, "name" character varying(255), "given_name" character varying(255), "family_name" character varying(255), "first_login_at" TIMESTAMP WITH TIME ZONE NOT NULL, "last_login_at" TIMESTAMP WITH TIME ZONE NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "uq_account_provider_sub" UNIQUE ("provider", "sub"), CONSTRAINT "PK_54115ee388cdb6d86bb4bf5b2ea" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE INDEX "ix_account_email" ON "account" ("email") `);
        await queryRunner.query(`CREATE TABLE "audit_event" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "actor_type" character varying(16) NOT NULL, "actor_id" character varying(255), "action" character varying(64) NOT NULL, "target_type" character varying(64), "target_id" character varying(255), "request_id" character varying(128), "outcome" character varying(16) NOT NULL DEFAULT 'success', "details" jsonb NOT NULL, CONSTRAINT "PK_481efbe8b0a403efe3f47a6528f" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE INDEX "ix_audit_event_target" ON "audit_event" ("target_type", "target_id", "occurred_at") `);
        await queryRunner.query(`CREATE INDEX "ix_audit_event_actor" ON "audit_event" ("actor_type", "actor_id", "occurred_at") `);
        await queryRunner.query(`CREATE INDEX "ix_audit_event_action_occurred_at" ON "audit_event" ("action", "occurred_at") `);
        await queryRunner.query(`CREATE INDEX "ix_audit_event_occurred_at" ON "audit_event" ("occurred_at") `);
        await queryRunner.query(`CREATE TABLE "oauth_client" ("client_id" character varying(255) NOT NULL, "name" character varying(255), "metadata" jsonb NOT NULL, "client_secret_enc" text, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_120e591449cf7f49569ee6c95b3" PRIMARY KEY ("client_id"))`);
        await queryRunner.query(`CREATE TABLE "oidc_key" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "kind" character varying(16) NOT NULL, "kid" character varying(128) NOT NULL, "material_enc" text NOT NULL, "active" boolean NOT NULL DEFAULT true, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_80b1597fe2cb06b0a4cc5ef9ff0" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE INDEX "ix_oidc_key_kind_created" ON "oidc_key" ("kind", "created_at") `);
        await queryRunner.query(`CREATE TABLE "oidc_payload" ("model" character varying(64) NOT NULL, "id" character varying(255) NOT NULL, "payload" jsonb NOT NULL, "grant_id" character varying(255), "user_code" character varying(255), "uid" character varying(255), "expires_at" TIMESTAMP WITH TIME ZONE, "consumed_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "PK_f8bdb5be780a6c077e38bb78a98" PRIMARY KEY ("model", "id"))`);
        await queryRunner.query(`CREATE INDEX "ix_oidc_payload_expires_at" ON "oidc_payload" ("expires_at") `);
        await queryRunner.query(`CREATE INDEX "ix_oidc_payload_user_code" ON "oidc_payload" ("user_code") `);
        await queryRunner.query(`CREATE INDEX "ix_oidc_payload_uid" ON "oidc_payload" ("uid") `);
        await queryRunner.query(`CREATE INDEX "ix_oidc_payload_grant_id" ON "oidc_payload" ("grant_id") `);
        await queryRunner.query(`CREATE TABLE "upstream_token" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "account_id" uuid NOT NULL, "provider" character varying(512) NOT NULL, "access_token_enc" text NOT NULL, "refresh_token_enc" text, "id_token_enc" text, "scope" character varying(2048) NOT NULL DEFAULT '', "access_token_expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "refresh_token_expires_at" TIMESTAMP WITH TIME ZONE, "status" character varying(32) NOT NULL DEFAULT 'valid', "last_refresh_at" TIMESTAMP WITH TIME ZONE, "last_refresh_outcome" character varying(32), "last_refresh_error" character varying(1024), "consecutive_failures" integer NOT NULL DEFAULT '0', "refresh_lease_until" TIMESTAMP WITH TIME ZONE, "refresh_lease_owner" uuid, "version" integer NOT NULL DEFAULT '1', "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "uq_upstream_token_account_provider" UNIQUE ("account_id", "provider"), CONSTRAINT "PK_f00fb9ec7249cb1c5c533167904" PRIMARY KEY ("id"))`);
        await queryRunner.query(`CREATE INDEX "ix_upstream_token_status_expiry" ON "upstream_token" ("status", "access_token_expires_at") `);
        await queryRunner.query(`ALTER TABLE "upstream_token" ADD CONSTRAINT "fk_upstream_token_account" FOREIGN KEY ("account_id") REFERENCES "account"("id") ON DELETE CASCADE ON UPDATE NO ACTION`);
        // Audit events are append-only: the database itself refuses to change or delete them.
        await queryRunner.query(`CREATE FUNCTION "audit_event_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$`);
        await queryRunner.query(`CREATE TRIGGER "audit_event_append_only" BEFORE UPDATE OR DELETE ON "audit_event" FOR EACH ROW EXECUTE FUNCTION "audit_event_append_only"()`);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP TRIGGER "audit_event_append_only" ON "audit_event"`);
        await queryRunner.query(`DROP FUNCTION "audit_event_append_only"()`);
        await queryRunner.query(`ALTER TABLE "upstream_token" DROP CONSTRAINT "fk_upstream_token_account"`);
        await queryRunner.query(`DROP INDEX "public"."ix_upstream_token_status_expiry"`);
        await queryRunner.query(`DROP TABLE "upstream_token"`);
        await queryRunner.query(`DROP INDEX "public"."ix_oidc_payload_grant_id"`);
        await queryRunner.query(`DROP INDEX "public"."ix_oidc_payload_uid"`);
        await queryRunner.query(`DROP INDEX "public"."ix_oidc_payload_user_code"`);
        await queryRunner.query(`DROP INDEX "public"."ix_oidc_payload_expires_at"`);
        await queryRunner.query(`DROP TABLE "oidc_payload"`);
        await queryRunner.query(`DROP INDEX "public"."ix_oidc_key_kind_created"`);
        await queryRunner.query(`DROP TABLE "oidc_key"`);
        await queryRunner.query(`DROP TABLE "oauth_client"`);
        await queryRunner.query(`DROP INDEX "public"."ix_audit_event_occurred_at"`);
        await queryRunner.query(`DROP INDEX "public"."ix_audit_event_action_occurred_at"`);
        await queryRunner.query(`DROP INDEX "public"."ix_audit_event_actor"`);
        await queryRunner.query(`DROP INDEX "public"."ix_audit_event_target"`);
        await queryRunner.query(`DROP TABLE "audit_event"`);
        await queryRunner.query(`DROP INDEX "public"."ix_account_email"`);
        await queryRunner.query(`DROP TABLE "account"`);
    }

}
