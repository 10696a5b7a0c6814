import { All, Controller, Get, HttpException, NotFoundException, Param, ParseUUIDPipe, Query, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiForbiddenResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import {
  AccountService,
  CurrentPrincipal,
  RequireScopes,
  RsaBearerGuard,
  type RsaPrincipal,
  UpstreamTokenError,
  UpstreamTokenVault,
} from '@rsa/auth';
import { clampLimit, decodeCursor, encodeCursor } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import { DataRevision } from '@rsa/database';
import { AccessPolicy, DelegatedResource } from '@rsa/delegation';
import { ResourceDiscoveryService, ResourceProxyService } from '@rsa/resources';
import { DelegatedGroupDto, ListResourcesQueryDto, ResourceDetailDto, ResourcesPageDto } from './dto/resource.dto';

type Section = 'owned' | 'delegated';

/**
 * The Resource Management API: what the caller may use, and using it. Needs the `fpx_rot` scope
 * (SCOPE_RELATED). A resource the caller may not use is a 404, exactly like one that does not exist.
 */
@ApiTags('Resources')
@ApiBearerAuth()
@UseGuards(RsaBearerGuard)
@RequireScopes((config) => config.scopes.related)
@Controller('resources')
export class ResourcesController {
  constructor(
    private readonly policy: AccessPolicy,
    private readonly vault: UpstreamTokenVault,
    private readonly accounts: AccountService,
    private readonly discovery: ResourceDiscoveryService,
    private readonly proxy: ResourceProxyService,
    private readonly config: RsaConfig,
    private readonly revisions: DataRevision,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Your resources and the ones delegated to you',
    description:
      '`owned` lists your resources; `delegated` groups the resources others delegated to you by owner, with the owner\'s ' +
      'availability (`unavailable` + `reason` when the owner\'s upstream tokens cannot be used: the resources are still listed). ' +
      'Pages hold `limit` resources in all, owned first; follow `next_cursor`. Your resources are re-discovered at the upstream ' +
      'when the last discovery is older than RESOURCE_DISCOVERY_STALE_SECONDS.',
  })
  @ApiOkResponse({ type: ResourcesPageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor' })
  async list(@CurrentPrincipal() principal: RsaPrincipal, @Query() query: ListResourcesQueryDto): Promise<ResourcesPageDto> {
    const limit = clampLimit(query.limit);
    const cursor = decodeCursor<{ s: Section; id: string }>(query.cursor, ['s', 'id']);
    const callerId = principal.accountId;
    const wantOwned = !query.owner || query.owner === callerId;
    const wantDelegated = !query.owner || query.owner !== callerId;
    let section: Section = cursor?.s === 'delegated' ? 'delegated' : 'owned';
    if (!wantOwned) section = 'delegated';

    let revision = principal.revision;
    // Discovery writes (new, renamed or gone aliases): what is listed must be read after it.
    if (section === 'owned' && !cursor && (await this.discovery.refreshIfStale(callerId))) revision = await this.revisions.current();

    const owned =
      section === 'owned' && wantOwned
        ? await this.policy.owned(callerId, { type: query.type, afterId: cursor?.s === 'owned' ? cursor.id || undefined : undefined, limit: limit + 1, revision })
        : [];
    if (owned.length > limit) {
      const page = owned.slice(0, limit);
      return { owned: page, delegated: [], next_cursor: encodeCursor({ s: 'owned', id: page[page.length - 1].id }) };
    }
    const room = limit - owned.length;
    let delegated: readonly DelegatedResource[] = [];
    let next: string | null = null;
    if (wantDelegated && room > 0) {
      const afterId = cursor?.s === 'delegated' ? cursor.id || undefined : undefined;
      delegated = await this.policy.delegated(callerId, { type: query.type, owner: query.owner, afterId, limit: room + 1, revision });
      if (delegated.length > room) {
        delegated = delegated.slice(0, room);
        next = encodeCursor({ s: 'delegated', id: delegated[delegated.length - 1].id });
      }
    } else if (wantDelegated) {
      next = encodeCursor({ s: 'delegated', id: '' });
    }
    return { owned: [...owned], delegated: await this.groupByOwner(delegated), next_cursor: next };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One resource you own or hold an active delegation for' })
  @ApiOkResponse({ type: ResourceDetailDto })
  @ApiNotFoundResponse({ description: 'No such resource, or you may not use it (indistinguishable)' })
  async get(@CurrentPrincipal() principal: RsaPrincipal, @Param('id', new ParseUUIDPipe({ errorHttpStatusCode: 404 })) id: string): Promise<ResourceDetailDto> {
    const access = await this.policy.resolve(principal.accountId, id, { revision: principal.revision });
    if (!access) throw notFound();
    const owner = await this.accounts.findById(access.ownerAccountId);
    return {
      id: access.id,
      type: access.type,
      name: access.name,
      scopes: access.scopes,
      role: access.role,
      owner: { sub: access.ownerAccountId, name: owner?.name ?? null, email: owner?.email ?? null },
    };
  }

  @All([':id/data', ':id/data/*path'])
  @ApiOperation({
    summary: 'Use a resource: proxy to the upstream resource API with the OWNER\'s upstream token',
    description:
      '`/resources/{id}/data/` is the resource itself at the upstream; anything after it is a path below the resource. Allowed for the ' +
      'owner, and for a delegate whose granted scopes cover the method (RESOURCE_METHOD_SCOPES; default GET/HEAD/OPTIONS → read, ' +
      'others → write). The path can never leave the resource: `..`, `.`, empty segments and encoded dots, slashes or backslashes are a 400 ' +
      'before anything is sent. Your Authorization header is never forwarded; redirects are not followed; upstream failures are 502/504.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiParam({ name: 'path', required: false, description: 'Path below the resource, e.g. `transactions`' })
  @ApiNotFoundResponse({ description: 'No such resource, or you may not use it' })
  @ApiForbiddenResponse({ description: 'Your delegation does not grant the scope this method needs' })
  @ApiBadRequestResponse({ description: 'The path tries to leave the resource' })
  async data(@CurrentPrincipal() principal: RsaPrincipal, @Param('id') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw notFound();
    const access = await this.policy.resolve(principal.accountId, id, { revision: principal.revision });
    if (!access) throw notFound();

    // The raw, still-encoded path: decoding first would hide `%2e%2e` from the checks.
    const rawUrl = req.originalUrl;
    const queryIndex = rawUrl.indexOf('?');
    const rawPath = queryIndex >= 0 ? rawUrl.slice(0, queryIndex) : rawUrl;
    const rawQuery = queryIndex >= 0 ? rawUrl.slice(queryIndex + 1) : '';
    // Routing ignores case (`/DATA/`), so the sub-path starts right after this route's own `/data`,
    // not at the first "/data" anywhere in the path.
    const prefix = /^\/resources\/[^/]+\/data(?=\/|$)/i.exec(rawPath);
    if (!prefix) throw notFound();
    const rawSubPath = rawPath.slice(prefix[0].length);
    // Throws ProxyPathError (400) before any upstream call.
    this.proxy.buildUrl(access, rawSubPath, '');

    const method = req.method.toUpperCase();
    const needed = this.config.resourceManagement.methodScopes[method];
    if (!needed) {
      // RFC 9110 §15.5.6: a 405 names the methods that are allowed.
      res.setHeader('Allow', Object.keys(this.config.resourceManagement.methodScopes).join(', '));
      throw new HttpException({ error: 'method_not_allowed', message: `${method} is not allowed on resources` }, 405);
    }
    if (access.role === 'delegate' && !access.scopes.includes(needed)) {
      throw new HttpException({ error: 'forbidden', message: `your delegation does not grant "${needed}"`, required_scope: needed }, 403);
    }

    let ownerToken: string;
    try {
      ownerToken = await this.vault.getUsableAccessToken(access.ownerAccountId);
    } catch (error) {
      if (error instanceof UpstreamTokenError) {
        const status = error.reason === 'upstream_timeout' ? 504 : error.reason === 'owner_login_required' ? 503 : 502;
        throw new HttpException({ error: error.reason, message: "the owner's upstream tokens cannot be used right now" }, status);
      }
      throw error;
    }
    const body = (req as Request & { rawBody?: Buffer }).rawBody;
    const upstream = await this.proxy.forward(access, ownerToken, {
      method,
      rawSubPath,
      rawQuery,
      headers: req.headers,
      body,
    });
    res.status(upstream.status);
    // Our own security headers (helmet) win over whatever the upstream sent under the same name.
    for (const [name, value] of Object.entries(upstream.headers)) if (!res.hasHeader(name)) res.setHeader(name, value);
    res.setHeader('Cache-Control', 'no-store');
    res.end(method === 'HEAD' ? undefined : upstream.body);
  }

  /** Groups by owner, with each owner's availability from the vault's stored status (one query). */
  private async groupByOwner(resources: readonly DelegatedResource[]): Promise<DelegatedGroupDto[]> {
    if (!resources.length) return [];
    const statuses = await this.vault.statusesFor([...new Set(resources.map((r) => r.ownerAccountId))]);
    const groups = new Map<string, DelegatedGroupDto>();
    for (const r of resources) {
      let group = groups.get(r.ownerAccountId);
      if (!group) {
        const health = statuses.get(r.ownerAccountId);
        const reason = health?.reason ?? 'owner_login_required';
        group = {
          owner: { sub: r.ownerAccountId, name: r.ownerName, email: r.ownerEmail },
          status: health?.usable ? 'available' : 'unavailable',
          ...(health?.usable ? {} : { reason }),
          resources: [],
        };
        groups.set(r.ownerAccountId, group);
      }
      group.resources.push({ id: r.id, type: r.type, name: r.name, scopes: r.scopes });
    }
    return [...groups.values()];
  }
}

const notFound = () => new NotFoundException({ error: 'not_found', message: 'resource not found' });
