import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Serves the proactive refresh claim (UpstreamTokenVault.claimDueForProactiveRefresh): the same
 * expression as its WHERE and ORDER BY, only over rows that can be refreshed. Written by hand —
 * TypeORM cannot express an index on an expression; the entity declares it with synchronize: false.
 */
export class ProactiveRefreshIndex1796420000000 implements MigrationInterface {
  name = 'ProactiveRefreshIndex1796420000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "ix_upstream_token_proactive_due" ON "upstream_token"
         ("provider", (LEAST("access_token_expires_at", COALESCE("refresh_token_expires_at", 'infinity'::timestamptz))))
       WHERE status IN ('valid', 'refresh_failing') AND refresh_token_enc IS NOT NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."ix_upstream_token_proactive_due"`);
  }
}
