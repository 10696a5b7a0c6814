import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { decodeCursor, DomainError, encodeCursor } from '@rsa/common';
import type { AuditActorType } from './entities';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export interface AuditEventFilter {
  actorType?: AuditActorType;
  /** Exact `actor_id`. */
  actorId?: string;
  /** Exact action, or a prefix when it ends with `.` or `*` (`delegation.` or `delegation.*`). */
  action?: string;
  targetType?: string;
  targetId?: string;
  outcome?: 'success' | 'failure';
  requestId?: string;
  /** Inclusive lower bound of `occurred_at`: an ISO 8601 date-time with a zone (kept as text: microseconds matter). */
  from?: string;
  /** Exclusive upper bound of `occurred_at`, same form. */
  to?: string;
}

export interface AuditEventView {
  id: string;
  occurred_at: string;
  actor_type: AuditActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  request_id: string | null;
  outcome: 'success' | 'failure';
  details: Record<string, unknown>;
}

interface Row {
  id: string;
  occurred_at: string;
  actor_type: AuditActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  request_id: string | null;
  outcome: 'success' | 'failure';
  details: Record<string, unknown>;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

/** Only a form PostgreSQL reads the same way whatever the session time zone; anything else is a 400, never a 500. */
function checkedTime(field: string, value: string): string {
  if (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value))) {
    throw new DomainError('VALIDATION', `${field} must be an ISO 8601 date and time with a time zone`, { field });
  }
  return value;
}

const likePrefix = (value: string) => `${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Reads the audit trail (the table is append-only: a trigger refuses UPDATE and DELETE, and nothing
 * here writes). Newest first, keyset pagination on (occurred_at, id): events written in one
 * transaction share `occurred_at` (now() is the transaction time), so the id breaks ties, and the
 * cursor keeps the timestamp to the microsecond.
 */
@Injectable()
export class AuditQueryService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async list(filter: AuditEventFilter, cursor: string | undefined, limit: number): Promise<{ items: AuditEventView[]; next_cursor: string | null }> {
    const after = decodeCursor<{ t: string; id: string }>(cursor, ['t', 'id']);
    if (after && (!CURSOR_TIME.test(after.t) || !UUID.test(after.id))) throw new DomainError('VALIDATION', 'cursor is not valid', { field: 'cursor' });
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (p: string) => string, value: unknown) => {
      params.push(value);
      where.push(sql(`$${params.length}`));
    };
    if (filter.actorType !== undefined) add((p) => `actor_type = ${p}`, filter.actorType);
    if (filter.actorId !== undefined) add((p) => `actor_id = ${p}`, filter.actorId);
    if (filter.action !== undefined) {
      const prefix = filter.action.endsWith('*') ? filter.action.slice(0, -1) : filter.action.endsWith('.') ? filter.action : undefined;
      if (prefix !== undefined) add((p) => `action LIKE ${p} ESCAPE '\\'`, likePrefix(prefix));
      else add((p) => `action = ${p}`, filter.action);
    }
    if (filter.targetType !== undefined) add((p) => `target_type = ${p}`, filter.targetType);
    if (filter.targetId !== undefined) add((p) => `target_id = ${p}`, filter.targetId);
    if (filter.outcome !== undefined) add((p) => `outcome = ${p}`, filter.outcome);
    if (filter.requestId !== undefined) add((p) => `request_id = ${p}`, filter.requestId);
    if (filter.from !== undefined) add((p) => `occurred_at >= ${p}::timestamptz`, checkedTime('from', filter.from));
    if (filter.to !== undefined) add((p) => `occurred_at < ${p}::timestamptz`, checkedTime('to', filter.to));
    if (after) {
      params.push(after.t, after.id);
      where.push(`(occurred_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(limit + 1);
    const rows: Row[] = await this.dataSource.query(
      `SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
              actor_type, actor_id, action, target_type, target_id, request_id, outcome, details
         FROM audit_event
        ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY occurred_at DESC, id DESC
        LIMIT $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(view), next_cursor: rows.length > limit ? encodeCursor({ t: last.occurred_at, id: last.id }) : null };
  }

  async get(id: string): Promise<AuditEventView> {
    if (!UUID.test(id)) throw new DomainError('NOT_FOUND', 'audit event not found');
    const rows: Row[] = await this.dataSource.query(
      `SELECT id, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at,
              actor_type, actor_id, action, target_type, target_id, request_id, outcome, details
         FROM audit_event WHERE id = $1`,
      [id],
    );
    if (!rows.length) throw new DomainError('NOT_FOUND', 'audit event not found');
    return view(rows[0]);
  }
}

/** `occurred_at` keeps its microseconds (ISO 8601 allows any number of fraction digits). */
function view(row: Row): AuditEventView {
  return {
    id: row.id,
    occurred_at: row.occurred_at,
    actor_type: row.actor_type,
    actor_id: row.actor_id,
    action: row.action,
    target_type: row.target_type,
    target_id: row.target_id,
    request_id: row.request_id,
    outcome: row.outcome,
    details: row.details,
  };
}
