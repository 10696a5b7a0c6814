import { Module } from '@nestjs/common';

/** Admin: metrics (being built). */
@Module({})
export class AdminMetricsModule {}
