import {
  CallHandler,
  ConflictException,
  ExecutionContext,
  Injectable,
  Logger,
  NestInterceptor,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  UnprocessableEntityException,
  BadRequestException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Request } from 'express';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { from, lastValueFrom, Observable } from 'rxjs';
import { DataSource } from 'typeorm';
import { columnAad, TokenCipher } from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { IdempotencyKeyEntity } from '@rsa/database';
import { SENSITIVE_RESPONSE } from './sensitive-response';

const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;
const WAIT_FOR_FIRST_MS = 10_000;
const KEEP_KEYS_HOURS = 24;

/**
 * `Idempotency-Key` on admin POSTs. The first request with a key claims it (INSERT … ON CONFLICT DO
 * NOTHING, so exactly one of N parallel requests runs); the others wait for its response and get it
 * back without a second write. The same key with a different body is a 422. If the first request
 * fails, the key is released so it can be retried.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(IdempotencyInterceptor.name);
  private timer?: NodeJS.Timeout;
  private readonly cipher: TokenCipher;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly reflector: Reflector,
    config: RsaConfig,
  ) {
    this.cipher = new TokenCipher(config);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.purge().catch((e: Error) => this.logger.warn(`purge failed: ${e.message}`)), 3600_000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    const key = req.header('idempotency-key');
    if (req.method !== 'POST' || key === undefined) return next.handle();
    if (!KEY_FORMAT.test(key)) throw new BadRequestException({ error: 'invalid_request', message: 'Idempotency-Key must be 1–255 visible ASCII characters' });
    const actor = req.adminActor ?? 'anonymous';
    const hash = createHash('sha256').update(`${req.method} ${req.path}\n${JSON.stringify(req.body ?? null)}`).digest('hex');
    const sensitive = this.reflector.getAllAndOverride<boolean>(SENSITIVE_RESPONSE, [context.getHandler(), context.getClass()]) === true;
    return from(this.run(actor, key, hash, next, sensitive));
  }

  private async run(actor: string, key: string, hash: string, next: CallHandler, sensitive: boolean): Promise<unknown> {
    const claimed = await this.dataSource
      .createQueryBuilder()
      .insert()
      .into(IdempotencyKeyEntity)
      .values({ actor, key, requestHash: hash })
      .orIgnore()
      .returning(['actor'])
      .execute();
    // No row back: another request holds this key already.
    if ((claimed.raw as unknown[]).length === 0) return this.replay(actor, key, hash, sensitive);
    try {
      const body = await lastValueFrom(next.handle(), { defaultValue: undefined });
      const json = JSON.stringify(body ?? null);
      // A response with a secret is stored encrypted, bound to this key (see SensitiveResponse).
      const stored = sensitive ? JSON.stringify({ encrypted: this.cipher.encrypt(json, this.aad(actor, key)) }) : json;
      await this.dataSource.query(
        'UPDATE idempotency_key SET response_status = $3, response_body = $4::jsonb WHERE actor = $1 AND key = $2',
        [actor, key, 201, stored],
      );
      return body;
    } catch (error) {
      await this.dataSource.getRepository(IdempotencyKeyEntity).delete({ actor, key });
      throw error;
    }
  }

  private async replay(actor: string, key: string, hash: string, sensitive: boolean): Promise<unknown> {
    const deadline = Date.now() + WAIT_FOR_FIRST_MS;
    for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
      const row = await this.dataSource.getRepository(IdempotencyKeyEntity).findOne({ where: { actor, key } });
      if (!row) throw new ConflictException({ error: 'conflict', message: 'the first request with this Idempotency-Key failed; retry' });
      if (row.requestHash !== hash) {
        throw new UnprocessableEntityException({ error: 'idempotency_key_reused', message: 'this Idempotency-Key was used with a different request' });
      }
      if (row.responseStatus !== null) return sensitive ? this.decryptResponse(actor, key, row.responseBody) : row.responseBody;
      if (Date.now() > deadline) throw new ConflictException({ error: 'conflict', message: 'the first request with this Idempotency-Key is still running' });
      await sleep(delay);
    }
  }

  private aad(actor: string, key: string): string {
    return columnAad('idempotency_key', 'response_body', `${actor}\n${key}`);
  }

  /** The request hash covers method and path, so a replay of a sensitive route finds its own encrypted form. */
  private decryptResponse(actor: string, key: string, body: unknown): unknown {
    const { encrypted } = body as { encrypted: string };
    return JSON.parse(this.cipher.decrypt(encrypted, this.aad(actor, key))) as unknown;
  }

  private async purge(): Promise<void> {
    await this.dataSource.query(`DELETE FROM idempotency_key WHERE created_at < now() - interval '${KEEP_KEYS_HOURS} hours'`);
  }
}

