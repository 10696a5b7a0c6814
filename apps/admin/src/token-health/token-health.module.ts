import { Module } from '@nestjs/common';

/** Admin: token-health (being built). */
@Module({})
export class AdminTokenHealthModule {}
