import { Controller, Get, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Registry } from 'prom-client';
import { RsaMetrics } from '@rsa/common';
import { TokenMetricsCollector } from './token-metrics.collector';

/** Prometheus metrics on the admin port, behind the admin token like every admin route. */
@ApiTags('Metrics')
@ApiBearerAuth()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: RsaMetrics,
    private readonly tokens: TokenMetricsCollector,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics (text exposition format)',
    description:
      'Token counts by status, delegations by owner token status and last refresh outcomes come from the database at scrape time (deployment-wide). ' +
      'Latency histograms (HTTP requests, upstream calls), the refresh counter and the process metrics are per process: ' +
      'scrape every instance. Needs an admin token (Prometheus: `authorization: { credentials: … }` in the scrape config).',
  })
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'Prometheus text format 0.0.4', schema: { type: 'string' } })
  async scrape(@Res() res: Response): Promise<void> {
    await this.tokens.collect();
    const registry = Registry.merge([this.metrics.registry, this.tokens.registry]);
    const text = await registry.metrics();
    // Written as is: res.send would re-format the content type Prometheus expects.
    res.status(200).setHeader('Content-Type', registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(text);
  }
}
