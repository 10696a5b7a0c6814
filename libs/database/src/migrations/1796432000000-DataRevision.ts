import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `data_revision`: one counter that every committed change to what the request path caches moves
 * forward (see DataRevision). The triggers are DEFERRABLE INITIALLY DEFERRED constraint triggers, so
 * the counter row is locked only at commit, after everything else the transaction locked (no lock
 * cycle through the counter), and bumped at most once per transaction (a transaction-local setting
 * remembers it). TRUNCATE has statement triggers of its own. Written by hand: TypeORM knows nothing
 * of triggers.
 *
 * What moves it:
 * - oidc_payload: a deleted or rewritten AccessToken (revocation), a deleted Grant (grant revocation,
 *   logout, refresh token reuse) or one whose expiry moved earlier — but not the purge of rows that
 *   expired more than a minute ago;
 * - oauth_client: any change (a removed or changed client);
 * - account: removal, or a new sub, name or email (the `related` claim shows them);
 * - the resource catalogue and delegations (the five generic_resource* tables): any change to a
 *   delegation, its scopes, an alias, its scopes or a resource type — except an alias that was only
 *   seen again by discovery (last_seen_at, updated_at).
 */
const BUMP_FUNCTION = `
CREATE FUNCTION "rsa_bump_data_revision"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('rsa.data_revision_bumped', true) IS DISTINCT FROM 'on' THEN
    UPDATE "data_revision" SET "value" = "value" + 1 WHERE "id" = 1;
    PERFORM set_config('rsa.data_revision_bumped', 'on', true);
  END IF;
  RETURN NULL;
END $$`;

interface Watch {
  table: string;
  /** Row events and, optionally, the condition under which they matter. */
  events: { name: string; event: 'INSERT' | 'UPDATE' | 'DELETE'; when?: string }[];
}

const WATCHED: Watch[] = [
  {
    table: 'oidc_payload',
    events: [
      // A row that expired a while ago backs no cached answer (they end at the token's or grant's
      // expiry): purging it must not empty every cache.
      { name: 'del', event: 'DELETE', when: `OLD."model" IN ('AccessToken', 'Grant') AND (OLD."expires_at" IS NULL OR OLD."expires_at" > now() - interval '1 minute')` },
      {
        name: 'upd',
        event: 'UPDATE',
        when: `OLD."model" = 'AccessToken' OR (OLD."model" = 'Grant' AND COALESCE(NEW."expires_at", 'infinity') < COALESCE(OLD."expires_at", 'infinity'))`,
      },
    ],
  },
  {
    table: 'oauth_client',
    events: [
      { name: 'upd', event: 'UPDATE' },
      { name: 'del', event: 'DELETE' },
    ],
  },
  {
    table: 'account',
    events: [
      { name: 'upd', event: 'UPDATE', when: `(OLD."sub", OLD."name", OLD."email") IS DISTINCT FROM (NEW."sub", NEW."name", NEW."email")` },
      { name: 'del', event: 'DELETE' },
    ],
  },
  ...['generic_resource', 'generic_resource_authorization', 'generic_resource_authorization_scope', 'generic_resource_alias_scope'].map(
    (table): Watch => ({
      table,
      events: [
        { name: 'ins', event: 'INSERT' },
        { name: 'upd', event: 'UPDATE' },
        { name: 'del', event: 'DELETE' },
      ],
    }),
  ),
  {
    table: 'generic_resource_alias',
    events: [
      { name: 'ins', event: 'INSERT' },
      {
        name: 'upd',
        event: 'UPDATE',
        when: `(OLD."status", OLD."display_name", OLD."owner_account_id", OLD."generic_resource_id", OLD."external_id")
               IS DISTINCT FROM (NEW."status", NEW."display_name", NEW."owner_account_id", NEW."generic_resource_id", NEW."external_id")`,
      },
      { name: 'del', event: 'DELETE' },
    ],
  },
];

export class DataRevision1796432000000 implements MigrationInterface {
  name = 'DataRevision1796432000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "data_revision" ("id" smallint NOT NULL, "value" bigint NOT NULL, CONSTRAINT "pk_data_revision" PRIMARY KEY ("id"), CONSTRAINT "ck_data_revision_single_row" CHECK ("id" = 1))`,
    );
    await queryRunner.query(`INSERT INTO "data_revision" ("id", "value") VALUES (1, 1)`);
    await queryRunner.query(BUMP_FUNCTION);
    for (const { table, events } of WATCHED) {
      for (const { name, event, when } of events) {
        await queryRunner.query(
          `CREATE CONSTRAINT TRIGGER "trg_${table}_revision_${name}" AFTER ${event} ON "${table}"
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW ${when ? `WHEN (${when})` : ''}
             EXECUTE FUNCTION "rsa_bump_data_revision"()`,
        );
      }
      await queryRunner.query(
        `CREATE TRIGGER "trg_${table}_revision_truncate" AFTER TRUNCATE ON "${table}" FOR EACH STATEMENT EXECUTE FUNCTION "rsa_bump_data_revision"()`,
      );
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const { table, events } of WATCHED) {
      for (const { name } of events) await queryRunner.query(`DROP TRIGGER "trg_${table}_revision_${name}" ON "${table}"`);
      await queryRunner.query(`DROP TRIGGER "trg_${table}_revision_truncate" ON "${table}"`);
    }
    await queryRunner.query(`DROP FUNCTION "rsa_bump_data_revision"()`);
    await queryRunner.query(`DROP TABLE "data_revision"`);
  }
}
