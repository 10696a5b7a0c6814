import { Module } from '@nestjs/common';

/** Admin: catalogue (being built). */
@Module({})
export class AdminCatalogueModule {}
