import { DataSource } from 'typeorm';
import { columnAad, TokenCipher } from './token-cipher';

/** Counts of one encrypted column after a re-encryption run. */
export interface ReencryptColumnReport {
  /** `table.column`, e.g. `upstream_token.refresh_token`. */
  column: string;
  /** Values found written with another key than the current one. */
  found: number;
  /** Values now written with the current key. */
  reencrypted: number;
  /** Values changed by someone else between read and write (left alone: a writer uses the current key). */
  changedConcurrently: number;
  /** Values no key of the ring decrypts (wrong ring, or tampered): left unchanged, reported. */
  failed: number;
}

export interface ReencryptReport {
  currentKeyId: string;
  columns: ReencryptColumnReport[];
  /** Sum of `failed`: non-zero means some values are unreadable with this key ring. */
  failed: number;
}

export interface ReencryptOptions {
  /** Rows per read (and per write transaction). */
  batchSize?: number;
  /** Progress lines (one per batch that changed something). */
  log?: (line: string) => void;
  /**
   * Restricts the run to some rows (tests on a shared database); the command itself always runs
   * over everything. Absent keys mean "every row" of that table.
   */
  only?: {
    upstreamTokenAccountIds?: string[];
    oauthClientIds?: string[];
    oidcKeyIds?: string[];
    idempotencyActors?: string[];
  };
}

/** One encrypted column: how to find rows, read the value, compute the AAD and write it back. */
interface ColumnSpec {
  table: string;
  column: string;
  /** Primary key columns (ordered; keyset pagination runs over them). */
  key: string[];
  /** SQL expression of the ciphertext (text) in a row. */
  valueSql: string;
  aad(row: Record<string, string>): string;
  /** SET clause for the new ciphertext ($1). */
  setSql: string;
  /** Optional restriction: SQL column and allowed values. */
  scope?: { column: string; values: string[] | undefined };
}

/**
 * Moves every value encrypted at rest to the current (first) key of TOKEN_ENCRYPTION_KEYS, so an old
 * key can then be removed from the ring:
 * - upstream_token.access_token_enc / refresh_token_enc / id_token_enc (AAD: account id),
 * - oauth_client.client_secret_enc (AAD: client id),
 * - oidc_key.material_enc (AAD: the key's kid),
 * - idempotency_key.response_body `{ "encrypted": … }` of sensitive admin responses (AAD: actor + key).
 *
 * Reads rows whose value carries another key id, in batches in primary key order; decrypts with the
 * ring and encrypts with the current key under the SAME AAD, and writes back only if the value is
 * still the one read (a compare-and-set: a refresh or login that wrote meanwhile is not undone, and
 * its value already uses the current key of its instance). Idempotent: a second run finds nothing.
 * Run it after every instance has the new key first in its ring (older instances would otherwise
 * keep writing with the old key).
 */
export class TokenReencryption {
  constructor(
    private readonly dataSource: DataSource,
    private readonly cipher: TokenCipher,
  ) {}

  async run(options: ReencryptOptions = {}): Promise<ReencryptReport> {
    const batchSize = options.batchSize ?? 200;
    const only = options.only ?? {};
    const columns: ReencryptColumnReport[] = [];
    for (const spec of this.columnSpecs(only)) columns.push(await this.runColumn(spec, batchSize, options.log));
    return { currentKeyId: this.cipher.currentKeyId, columns, failed: columns.reduce((n, c) => n + c.failed, 0) };
  }

  /**
   * Counts values per key id and column (what an operator checks before removing an old key).
   * Empty values (a revoked token's `access_token_enc`) are not counted.
   */
  async keyUsage(): Promise<Record<string, Record<string, number>>> {
    const usage: Record<string, Record<string, number>> = {};
    for (const spec of this.columnSpecs({})) {
      const rows = await this.dataSource.query<{ kid: string; n: string }[]>(
        `SELECT split_part(v, '.', 2) AS kid, count(*) AS n FROM (SELECT ${spec.valueSql} AS v FROM ${spec.table}) s
          WHERE v IS NOT NULL AND v <> '' GROUP BY 1 ORDER BY 1`,
      );
      usage[`${spec.table}.${spec.column}`] = Object.fromEntries(rows.map((r) => [r.kid, Number(r.n)]));
    }
    return usage;
  }

  private columnSpecs(only: NonNullable<ReencryptOptions['only']>): ColumnSpec[] {
    const token = (column: 'access_token' | 'refresh_token' | 'id_token'): ColumnSpec => ({
      table: 'upstream_token',
      column,
      key: ['id'],
      valueSql: `${column}_enc`,
      aad: (row) => columnAad('upstream_token', column, row.account_id),
      setSql: `${column}_enc = $1`,
      scope: { column: 'account_id::text', values: only.upstreamTokenAccountIds },
    });
    return [
      token('access_token'),
      token('refresh_token'),
      token('id_token'),
      {
        table: 'oauth_client',
        column: 'client_secret',
        key: ['client_id'],
        valueSql: 'client_secret_enc',
        aad: (row) => columnAad('oauth_client', 'client_secret', row.client_id),
        setSql: 'client_secret_enc = $1',
        scope: { column: 'client_id', values: only.oauthClientIds },
      },
      {
        table: 'oidc_key',
        column: 'material',
        key: ['id'],
        valueSql: 'material_enc',
        aad: (row) => columnAad('oidc_key', 'material', row.kid),
        setSql: 'material_enc = $1',
        scope: { column: 'id::text', values: only.oidcKeyIds },
      },
      {
        table: 'idempotency_key',
        column: 'response_body',
        key: ['actor', 'key'],
        // Only sensitive responses are stored as { "encrypted": "v1.…" }; others are plain JSON.
        valueSql: `(CASE WHEN jsonb_typeof(response_body) = 'object' THEN response_body->>'encrypted' END)`,
        aad: (row) => columnAad('idempotency_key', 'response_body', `${row.actor}\n${row.key}`),
        setSql: `response_body = jsonb_build_object('encrypted', $1::text)`,
        scope: { column: 'actor', values: only.idempotencyActors },
      },
    ];
  }

  private async runColumn(spec: ColumnSpec, batchSize: number, log?: (line: string) => void): Promise<ReencryptColumnReport> {
    const name = `${spec.table}.${spec.column}`;
    const report: ReencryptColumnReport = { column: name, found: 0, reencrypted: 0, changedConcurrently: 0, failed: 0 };
    const current = this.cipher.currentKeyId;
    const keyList = spec.key.join(', ');
    let after: string[] | undefined;
    for (;;) {
      const params: unknown[] = [current, batchSize];
      const v = spec.valueSql;
      const where = [`${v} IS NOT NULL`, `${v} <> ''`, `split_part(${v}, '.', 2) <> $1`];
      if (after) {
        // Keyset pagination on the primary key (its index serves it); parameter types follow the columns.
        const placeholders = after.map((value) => {
          params.push(value);
          return `$${params.length}`;
        });
        where.push(`(${keyList}) > (${placeholders.join(', ')})`);
      }
      if (spec.scope?.values) {
        params.push(spec.scope.values);
        where.push(`${spec.scope.column} = ANY($${params.length}::text[])`);
      }
      const extra = spec.table === 'upstream_token' ? ', account_id::text AS account_id' : spec.table === 'oidc_key' ? ', kid' : '';
      const rows = await this.dataSource.query<Record<string, string>[]>(
        `SELECT ${spec.key.map((k) => `${k}::text AS ${k}`).join(', ')}${extra}, ${v} AS v FROM ${spec.table}
          WHERE ${where.join(' AND ')} ORDER BY ${keyList} LIMIT $2`,
        params,
      );
      if (!rows.length) break;
      after = spec.key.map((k) => rows[rows.length - 1][k]);
      report.found += rows.length;
      let changed = 0;
      await this.dataSource.transaction(async (manager) => {
        for (const row of rows) {
          let fresh: string;
          try {
            fresh = this.cipher.encrypt(this.cipher.decrypt(row.v, spec.aad(row)), spec.aad(row));
          } catch {
            report.failed += 1;
            log?.(`  ${name}: ${spec.key.map((k) => `${k}=${row[k]}`).join(' ')} does not decrypt with this key ring (key "${this.cipher.keyIdOf(row.v) ?? '?'}"); left unchanged`);
            continue;
          }
          const keyParams = spec.key.map((k) => row[k]);
          const result = await manager.query<[unknown[], number]>(
            `UPDATE ${spec.table} SET ${spec.setSql}
              WHERE ${spec.key.map((k, i) => `${k} = $${i + 3}`).join(' AND ')} AND ${spec.valueSql} = $2`,
            [fresh, row.v, ...keyParams],
          );
          // node-postgres through TypeORM: [rows, affected] for UPDATE.
          const affected = Array.isArray(result) ? Number(result[1]) : 0;
          if (affected > 0) {
            report.reencrypted += 1;
            changed += 1;
          } else {
            report.changedConcurrently += 1;
          }
        }
      });
      if (changed) log?.(`  ${name}: ${report.reencrypted} re-encrypted so far`);
      if (rows.length < batchSize) break;
    }
    return report;
  }
}
