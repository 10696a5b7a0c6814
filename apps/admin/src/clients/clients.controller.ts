import { Body, Controller, Delete, Get, Header, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { ClientAdminService } from '@rsa/auth';
import { clampLimit } from '@rsa/common';
import { AdminActor, type AdminContext } from '../common/admin-actor';
import { ListQueryDto } from '../common/list-query.dto';
import { SensitiveResponse } from '../common/sensitive-response';
import { ClientDto, ClientPageDto, ClientSecretDto, CreateClientDto, CreatedClientDto, UpdateClientDto } from './dto/client.dto';

const CLIENT_ID = { name: 'id', description: 'The client_id', example: 'wallet-prod' };

/** OAuth clients of the RSA (e.g. Wallet Servers): what may run authorization code + PKCE at the RSA. */
@ApiTags('Clients')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('clients')
export class ClientsController {
  constructor(private readonly clients: ClientAdminService) {}

  @Get()
  @ApiOperation({ summary: 'List clients', description: 'Ordered by client_id; cursor pagination (`limit` ≤ 100). Secrets are never returned.' })
  @ApiOkResponse({ type: ClientPageDto })
  list(@Query() query: ListQueryDto): Promise<ClientPageDto> {
    return this.clients.list(query.cursor, clampLimit(query.limit));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One client (without its secret)' })
  @ApiParam(CLIENT_ID)
  @ApiOkResponse({ type: ClientDto })
  @ApiNotFoundResponse({ description: 'No such client' })
  get(@Param('id') id: string): Promise<ClientDto> {
    return this.clients.get(id);
  }

  @Post()
  @SensitiveResponse()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Register a client',
    description:
      'Metadata is checked against the RSA rules (grant types ⊆ authorization_code, refresh_token; scopes ⊆ the RSA scopes; https redirect URIs, plain http only to loopback) and oidc-provider’s client schema. ' +
      'A confidential client (`client_secret_basic`/`client_secret_post`) gets a generated `client_secret`, returned in this response only. ' +
      'Accepts `Idempotency-Key` (a replay returns the same response; it is stored encrypted).',
  })
  @ApiCreatedResponse({ type: CreatedClientDto })
  @ApiBadRequestResponse({ description: 'Invalid metadata; the failing field is named' })
  @ApiConflictResponse({ description: 'A client with that client_id exists' })
  create(@Body() body: CreateClientDto, @AdminActor() actor: AdminContext): Promise<CreatedClientDto> {
    return this.clients.create(body, actor);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change a client’s metadata',
    description:
      'Only the fields given change (lists are replaced). Takes effect at the next authorization or token request; tokens already issued keep their scopes. ' +
      'A client cannot switch between confidential and public.',
  })
  @ApiParam(CLIENT_ID)
  @ApiOkResponse({ type: ClientDto })
  @ApiBadRequestResponse({ description: 'Invalid metadata; the failing field is named' })
  @ApiNotFoundResponse({ description: 'No such client' })
  update(@Param('id') id: string, @Body() body: UpdateClientDto, @AdminActor() actor: AdminContext): Promise<ClientDto> {
    return this.clients.update(id, body, actor);
  }

  @Post(':id/secret')
  @HttpCode(200)
  @SensitiveResponse()
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Rotate the client secret',
    description:
      'Generates a new secret, returned once. The old secret stops working immediately; tokens already issued to the client stay valid (delete the client to revoke them).',
  })
  @ApiParam(CLIENT_ID)
  @ApiOkResponse({ type: ClientSecretDto })
  @ApiNotFoundResponse({ description: 'No such client' })
  @ApiConflictResponse({ description: 'A public client has no secret' })
  rotateSecret(@Param('id') id: string, @AdminActor() actor: AdminContext): Promise<ClientSecretDto> {
    return this.clients.rotateSecret(id, actor);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete a client and revoke everything issued to it',
    description:
      'In one transaction: the client, its grants, access and refresh tokens, authorization codes and pending logins. Its tokens get 401 at once.',
  })
  @ApiParam(CLIENT_ID)
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ description: 'No such client' })
  async delete(@Param('id') id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.clients.delete(id, actor);
  }
}
