import { Module } from '@nestjs/common';

/** Admin: delegations (being built). */
@Module({})
export class AdminDelegationsModule {}
