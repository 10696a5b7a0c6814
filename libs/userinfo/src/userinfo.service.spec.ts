import { Test } from '@nestjs/testing';
import { AccountService, UpstreamClient, UpstreamTokenError, UpstreamTokenVault } from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { UserinfoService } from './userinfo.service';

describe('UserinfoService', () => {
  const upstreamClaims = { sub: 'upstream-alice', name: 'Alice', given_name: 'Alice', email: 'alice@example.com', email_verified: true, phone_number: '+1' };
  let service: UserinfoService;
  const vault = { getUsableAccessToken: jest.fn() };
  const upstream = { fetchUserInfo: jest.fn() };
  const accounts = { findById: jest.fn() };

  beforeEach(async () => {
    jest.resetAllMocks();
    vault.getUsableAccessToken.mockResolvedValue('upstream-access-token');
    upstream.fetchUserInfo.mockResolvedValue(upstreamClaims);
    accounts.findById.mockResolvedValue({ id: 'rsa-alice', sub: 'upstream-alice' });
    const moduleRef = await Test.createTestingModule({
      providers: [
        UserinfoService,
        { provide: UpstreamTokenVault, useValue: vault },
        { provide: UpstreamClient, useValue: upstream },
        { provide: AccountService, useValue: accounts },
        { provide: RsaConfig, useValue: { userinfoCacheTtlSeconds: 30 } },
      ],
    }).compile();
    service = moduleRef.get(UserinfoService);
  });

  const principal = (scopes: string[]) => ({ accountId: 'rsa-alice', clientId: 'w', grantId: 'g', expiresAt: 0, scopes: new Set(scopes), revision: '1' });

  it('releases only the claims of the granted scopes, under the RSA subject', async () => {
    expect(await service.claimsFor(principal(['openid']))).toEqual({ sub: 'rsa-alice' });
    expect(await service.claimsFor(principal(['openid', 'email']))).toEqual({ sub: 'rsa-alice', email: 'alice@example.com', email_verified: true });
    expect(await service.claimsFor(principal(['openid', 'profile']))).toEqual({ sub: 'rsa-alice', name: 'Alice', given_name: 'Alice' });
  });

  it("fetches with the user's own upstream token and the stored upstream sub, then serves from the cache", async () => {
    await service.claimsFor(principal(['openid', 'email']));
    await service.claimsFor(principal(['openid', 'profile']));
    expect(vault.getUsableAccessToken).toHaveBeenCalledTimes(1);
    expect(vault.getUsableAccessToken).toHaveBeenCalledWith('rsa-alice');
    expect(upstream.fetchUserInfo).toHaveBeenCalledWith('upstream-access-token', 'upstream-alice');
  });

  it('does not cache failures', async () => {
    vault.getUsableAccessToken.mockRejectedValueOnce(new UpstreamTokenError('upstream_timeout', 'slow'));
    await expect(service.claimsFor(principal(['openid']))).rejects.toMatchObject({ reason: 'upstream_timeout' });
    await expect(service.claimsFor(principal(['openid', 'email']))).resolves.toMatchObject({ email: 'alice@example.com' });
  });
});
