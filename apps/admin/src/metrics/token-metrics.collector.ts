import { Injectable } from '@nestjs/common';
import { Gauge, Registry } from 'prom-client';
import { TokenHealthService } from '@rsa/auth';
import { REFRESH_OUTCOMES, TOKEN_STATUSES } from '@rsa/database';

/**
 * Gauges computed from the database at scrape time, so they describe the whole deployment (every
 * instance), unlike the process-wide latency histograms and refresh counter. They live in a registry
 * of this app's own: two admin apps in one process (tests) each set their own values.
 */
@Injectable()
export class TokenMetricsCollector {
  readonly registry = new Registry();
  private readonly tokens = new Gauge({
    name: 'rsa_upstream_tokens',
    help: 'Accounts by the status of their upstream tokens (valid, refreshable, reauth_required, refresh_failing, revoked), from the database at scrape time',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly delegations = new Gauge({
    name: 'rsa_active_delegations',
    help: "Active, unexpired delegations by the status of their owner's upstream tokens, from the database at scrape time",
    labelNames: ['owner_token_status'],
    registers: [this.registry],
  });
  private readonly lastOutcomes = new Gauge({
    name: 'rsa_upstream_tokens_by_last_refresh_outcome',
    help: 'Accounts by the outcome of their last upstream token refresh (none: not refreshed since login), from the database at scrape time',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  constructor(private readonly health: TokenHealthService) {}

  async collect(): Promise<void> {
    const [summary, outcomes] = await Promise.all([this.health.summary(), this.health.lastRefreshOutcomes()]);
    for (const status of TOKEN_STATUSES) {
      this.tokens.set({ status }, summary.by_status[status].accounts);
      this.delegations.set({ owner_token_status: status }, summary.by_status[status].active_delegations);
    }
    for (const outcome of [...REFRESH_OUTCOMES, 'none'] as const) this.lastOutcomes.set({ outcome }, outcomes[outcome]);
  }
}
