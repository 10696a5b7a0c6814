import { MigrationInterface, QueryRunner } from "typeorm";

/** Shared fixed-window rate-limit counters (generated from the entity). */

export class RateLimit1796420343395 implements MigrationInterface {
    name = 'RateLimit1796420343395'

    public async up(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`CREATE TABLE "rate_limit_bucket" ("key" character varying(255) NOT NULL, "window_start" TIMESTAMP WITH TIME ZONE NOT NULL, "count" integer NOT NULL DEFAULT '0', CONSTRAINT "PK_297f92caac7bd103dfaf6d95490" PRIMARY KEY ("key", "window_start"))`);
        await queryRunner.query(`CREATE INDEX "ix_rate_limit_bucket_window_start" ON "rate_limit_bucket" ("window_start") `);
    }

    public async down(queryRunner: QueryRunner): Promise<void> {
        await queryRunner.query(`DROP INDEX "public"."ix_rate_limit_bucket_window_start"`);
        await queryRunner.query(`DROP TABLE "rate_limit_bucket"`);
    }

}
