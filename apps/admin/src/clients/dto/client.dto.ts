import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsOptional, IsString, Matches, MaxLength, ValidateIf } from 'class-validator';

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'];
const GRANT_TYPES = ['authorization_code', 'refresh_token'];
/** Space-separated scope tokens (RFC 6749 §3.3). */
const SCOPE_STRING = /^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$/;
const REDIRECT_RULE =
  'Absolute URLs without a fragment, matched exactly. `https` is required, except plain `http` to the loopback interface (`localhost`, `127.0.0.1`, `[::1]`) for development.';

export class CreateClientDto {
  @ApiPropertyOptional({
    description: 'Generated (a UUID) when absent. 1–128 characters of `A–Z a–z 0–9 . _ ~ -`, starting with a letter or digit.',
    example: 'wallet-prod',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/, { message: 'client_id must be 1–128 characters of A–Z a–z 0–9 . _ ~ - starting with a letter or digit' })
  client_id?: string;

  @ApiPropertyOptional({ description: 'Shown to operators (and in audit events)', example: 'Production Wallet' })
  @IsOptional()
  @IsString()
  @MaxLength(255)
  client_name?: string;

  @ApiProperty({ description: REDIRECT_RULE, example: ['https://wallet.example.com/callback'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(2000, { each: true })
  redirect_uris: string[];

  @ApiPropertyOptional({ description: `Where RP-initiated logout may return to. ${REDIRECT_RULE}`, example: ['https://wallet.example.com/'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(2000, { each: true })
  post_logout_redirect_uris?: string[];

  @ApiPropertyOptional({
    description: 'Must include `authorization_code`; add `refresh_token` for refresh tokens (with the `offline_access` scope).',
    enum: GRANT_TYPES,
    isArray: true,
    default: GRANT_TYPES,
  })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @IsIn(GRANT_TYPES, { each: true })
  grant_types?: string[];

  @ApiProperty({
    description:
      'Space-separated scopes the client may request: a subset of `openid profile email offline_access` plus the RSA scopes (SCOPE_RELATED, default `fpx_rot`; SCOPE_DELEGATIONS, default `delegations`).',
    example: 'openid profile email offline_access fpx_rot delegations',
  })
  @IsString()
  @MaxLength(1000)
  @Matches(SCOPE_STRING, { message: 'scope must be scope tokens separated by single spaces' })
  scope: string;

  @ApiPropertyOptional({
    description:
      '`client_secret_basic` (default) or `client_secret_post`: a confidential client, whose secret is generated and returned once. `none`: a public client (PKCE only, no secret).',
    enum: AUTH_METHODS,
    default: 'client_secret_basic',
  })
  @IsOptional()
  @IsIn(AUTH_METHODS)
  token_endpoint_auth_method?: string;
}

export class UpdateClientDto {
  @ApiPropertyOptional({ description: 'null removes the name', nullable: true, type: String })
  @IsOptional()
  @ValidateIf((_o, value) => value !== null)
  @IsString()
  @MaxLength(255)
  client_name?: string | null;

  @ApiPropertyOptional({ description: `Replaces the list. ${REDIRECT_RULE}` })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(2000, { each: true })
  redirect_uris?: string[];

  @ApiPropertyOptional({ description: `Replaces the list. ${REDIRECT_RULE}` })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(2000, { each: true })
  post_logout_redirect_uris?: string[];

  @ApiPropertyOptional({ enum: GRANT_TYPES, isArray: true, description: 'Must include `authorization_code`' })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @IsIn(GRANT_TYPES, { each: true })
  grant_types?: string[];

  @ApiPropertyOptional({ description: 'Space-separated scopes (replaces the current ones); only newly issued tokens are affected' })
  @IsOptional()
  @IsString()
  @MaxLength(1000)
  @Matches(SCOPE_STRING, { message: 'scope must be scope tokens separated by single spaces' })
  scope?: string;

  @ApiPropertyOptional({
    enum: AUTH_METHODS,
    description: 'Between `client_secret_basic` and `client_secret_post` only: a client cannot switch between confidential and public (`none`).',
  })
  @IsOptional()
  @IsIn(AUTH_METHODS)
  token_endpoint_auth_method?: string;
}

export class ClientDto {
  @ApiProperty({ example: 'wallet-prod' }) client_id: string;
  @ApiProperty({ nullable: true, type: String }) client_name: string | null;
  @ApiProperty({ enum: ['confidential', 'public'], description: '`public`: token_endpoint_auth_method `none`' }) client_type: 'confidential' | 'public';
  @ApiProperty({ type: [String] }) redirect_uris: string[];
  @ApiProperty({ type: [String] }) post_logout_redirect_uris: string[];
  @ApiProperty({ type: [String], example: GRANT_TYPES }) grant_types: string[];
  @ApiProperty({ type: [String], example: ['code'] }) response_types: string[];
  @ApiProperty({ example: 'openid profile email offline_access fpx_rot' }) scope: string;
  @ApiProperty({ enum: AUTH_METHODS }) token_endpoint_auth_method: string;
  @ApiProperty({ description: 'Whether a secret is set. The secret itself is never returned after creation or rotation.' }) has_secret: boolean;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

export class CreatedClientDto extends ClientDto {
  @ApiPropertyOptional({
    description: 'The generated secret of a confidential client. Shown ONCE, here: store it now. It is kept only encrypted and never returned again (rotate it to get a new one).',
  })
  client_secret?: string;
}

export class ClientSecretDto {
  @ApiProperty() client_id: string;
  @ApiProperty({ description: 'The new secret, shown once; the previous one no longer works.' }) client_secret: string;
}

export class ClientPageDto {
  @ApiProperty({ type: [ClientDto] }) items: ClientDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last page' }) next_cursor: string | null;
}
