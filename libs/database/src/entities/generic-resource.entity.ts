import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, Unique, UpdateDateColumn } from 'typeorm';

/** A kind of resource the Resource Server offers (e.g. `account`), and how to reach it upstream. */
@Entity('generic_resource')
@Unique('uq_generic_resource_identifier', ['identifier'])
export class GenericResourceEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** Stable machine name, shown as the resource `type` (e.g. `account`). */
  @Column({ type: 'varchar', length: 64 })
  identifier: string;

  @Column({ type: 'varchar', length: 255 })
  name: string;

  @Column({ type: 'varchar', length: 2000, nullable: true })
  description: string | null;

  /** Path of one resource at the upstream resource API, with `{id}` for the alias's external id. */
  @Column({ name: 'path_template', type: 'varchar', length: 512 })
  pathTemplate: string;

  /** Path that lists the caller's resources of this kind (`{ items: [{ id, name }] }` or an array); null = no discovery. */
  @Column({ name: 'discovery_path', type: 'varchar', length: 512, nullable: true })
  discoveryPath: string | null;

  /** Scopes an alias of this kind can carry (e.g. `read`, `write`). */
  @Column({ type: 'text', array: true, default: () => "'{}'" })
  scopes: string[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
