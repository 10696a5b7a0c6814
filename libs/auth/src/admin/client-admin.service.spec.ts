import { redirectUriProblem } from './client-admin.service';

describe('redirectUriProblem: which redirect URIs a client may register', () => {
  it.each([
    'https://wallet.example.com/callback',
    'https://wallet.example.com:8443/cb?tenant=a',
    'http://localhost:8080/callback',
    'http://127.0.0.1/cb',
    'http://[::1]:9000/cb',
  ])('accepts %s', (uri) => {
    expect(redirectUriProblem(uri)).toBeUndefined();
  });

  it.each([
    ['', /non-empty/],
    ['/callback', /absolute/],
    ['wallet.example.com/callback', /absolute/],
    ['http://wallet.example.com/callback', /https/],
    ['http://127.0.0.2/cb', /https/],
    ['http://localhost.evil.example/cb', /https/],
    ['https://wallet.example.com/cb#fragment', /fragment/],
    ['https://user:secret@wallet.example.com/cb', /credentials/],
    ['wallet://callback', /https/],
    ['javascript:alert(1)', /https/],
    [`https://wallet.example.com/${'a'.repeat(2000)}`, /2000/],
  ])('refuses %j', (uri, reason) => {
    expect(redirectUriProblem(uri)).toMatch(reason);
  });
});
