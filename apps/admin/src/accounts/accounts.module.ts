import { Module } from '@nestjs/common';

/** Admin: accounts (being built). */
@Module({})
export class AdminAccountsModule {}
