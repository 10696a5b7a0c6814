import { Module } from '@nestjs/common';
import { AuthModule } from '@rsa/auth';
import { HttpMetricsModule } from '@rsa/common';
import { MetricsController } from './metrics.controller';
import { TokenMetricsCollector } from './token-metrics.collector';

/**
 * Admin: `GET /metrics` (Prometheus). Importing HttpMetricsModule also records the latency of every
 * admin request (`rsa_http_request_duration_seconds{app="admin"}`).
 */
@Module({
  imports: [AuthModule, HttpMetricsModule.forApp('admin')],
  controllers: [MetricsController],
  providers: [TokenMetricsCollector],
})
export class AdminMetricsModule {}
