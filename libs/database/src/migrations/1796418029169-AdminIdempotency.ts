import { MigrationInterface, QueryRunner } from 'typeorm';

/** Idempotency keys of admin POSTs (generated from the entity). */

export class AdminIdempotency1796418029169 implements MigrationInterface {
    name = 'AdminIdempotency1796418029169'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`CREATE TABLE "idempotency_key" ("actor" character varying(128) NOT NULL, "key" character varying(255) NOT NULL, "request_hash" character varying(64) NOT NULL, "response_status" integer, "response_body" jsonb, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_773cf5a1593922fc8420ee4fa54" PRIMARY KEY ("actor", "key"))`);
        await queryRunner.query(`CREATE INDEX "ix_idempotency_key_created_at" ON "idempotency_key" ("created_at") `);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP INDEX "public"."ix_idempotency_key_created_at"`);
        await queryRunner.query(`DROP TABLE "idempotency_key"`);
    }

}
