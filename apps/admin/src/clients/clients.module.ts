import { Module } from '@nestjs/common';

/** Admin: clients (being built). */
@Module({})
export class AdminClientsModule {}
