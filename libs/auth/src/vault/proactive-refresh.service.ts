import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { RsaConfig } from '@rsa/config';
import { UpstreamTokenError } from '../upstream/upstream-errors';
import { ClaimedRefresh, UpstreamTokenVault } from './upstream-token-vault.service';

/** Refreshes run side by side within one run: enough to overlap upstream latency, few enough for the pool. */
const CONCURRENCY = 4;

export interface ProactiveRefreshRun {
  /** Rows this instance claimed (and so attempted). */
  claimed: number;
  refreshed: number;
  failed: number;
  /** Failures by reason (`owner_login_required`, `upstream_error`, `upstream_timeout`, or an error code). */
  failures: Record<string, number>;
}

/**
 * Keeps the upstream tokens of owners with active delegations alive, so a delegation does not stop
 * working because its owner has not logged in lately (SPEC §2). Every PROACTIVE_REFRESH_INTERVAL_SECONDS
 * each api instance claims rows due within PROACTIVE_REFRESH_WINDOW_SECONDS, a few at a time, and
 * refreshes them through the vault, at most PROACTIVE_REFRESH_MAX_PER_RUN per run.
 *
 * Safe with any number of instances: a row is claimed by taking the vault's refresh lease in the same
 * statement that picks it (`FOR UPDATE SKIP LOCKED`), so two instances never pick the same row, an
 * on-demand refresh of that owner waits for ours instead of racing it, and no transaction is open
 * while the upstream is called. A refreshed row is no longer due; a failed one is recorded by the
 * vault (status, outcome, audit event) and left alone for one interval.
 */
@Injectable()
export class ProactiveRefreshService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProactiveRefreshService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<ProactiveRefreshRun>;
  private stopping = false;

  constructor(
    private readonly vault: UpstreamTokenVault,
    private readonly config: RsaConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.proactiveRefresh.enabled) this.schedule();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    // Let a run in progress finish its upstream calls, so it stores what it obtained (a rotated
    // refresh token obtained and then dropped would cost the owner their grant).
    await this.running?.catch(() => undefined);
  }

  /**
   * One run: claims and refreshes due rows until none is left or the per-run bound is reached. A run
   * already in progress in this instance is joined, not doubled.
   */
  runOnce(): Promise<ProactiveRefreshRun> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(): void {
    if (this.stopping) return;
    // ±10 % jitter so instances started together do not claim in lockstep.
    const base = this.config.proactiveRefresh.intervalSeconds * 1000;
    const delay = Math.round(base * (0.9 + Math.random() * 0.2));
    this.timer = setTimeout(() => {
      void this.runOnce()
        .then((run) => {
          if (run.claimed) {
            this.logger.log(`proactive refresh: ${run.refreshed} refreshed, ${run.failed} failed ${JSON.stringify(run.failures)}`);
          }
        })
        .catch((error: Error) => this.logger.warn(`proactive refresh run failed: ${error.message}`))
        .finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }

  private async run(): Promise<ProactiveRefreshRun> {
    const { windowSeconds, intervalSeconds, maxPerRun } = this.config.proactiveRefresh;
    const result: ProactiveRefreshRun = { claimed: 0, refreshed: 0, failed: 0, failures: {} };
    // A row whose refresh failed without being recorded (e.g. a ciphertext that does not decrypt)
    // would be due again at once: try each account once per run.
    const tried: string[] = [];
    while (!this.stopping && result.claimed < maxPerRun) {
      // Claim only what is refreshed right away: a lease lasts one upstream call, not a queue's wait.
      const batch = await this.vault.claimDueForRefresh({
        windowSeconds,
        minGapSeconds: intervalSeconds,
        limit: Math.min(CONCURRENCY, maxPerRun - result.claimed),
        exclude: tried,
      });
      if (!batch.length) break;
      tried.push(...batch.map((claim) => claim.accountId));
      result.claimed += batch.length;
      await Promise.all(batch.map((claim) => this.refresh(claim, result)));
    }
    return result;
  }

  private async refresh(claim: ClaimedRefresh, result: ProactiveRefreshRun): Promise<void> {
    try {
      await this.vault.refreshClaimed(claim);
      result.refreshed += 1;
    } catch (error) {
      result.failed += 1;
      const key = error instanceof UpstreamTokenError ? error.reason : ((error as { code?: string }).code ?? 'error');
      result.failures[key] = (result.failures[key] ?? 0) + 1;
      if (!(error instanceof UpstreamTokenError)) {
        this.logger.warn(`proactive refresh of account ${claim.accountId} failed: ${(error as Error).message}`);
      }
    }
  }
}
