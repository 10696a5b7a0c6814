import { posix } from 'node:path';
import fc from 'fast-check';
import type { RsaConfig } from '@rsa/config';
import { ProxyPathError, ResourceProxyService, validateSubPath } from './resource-proxy.service';

const RESOURCE_BASE_URL = 'https://rs.example/api/v1';
const TARGET = { pathTemplate: '/accounts/{id}', externalId: 'acc-42' };
const BASE_PATH = '/api/v1/accounts/acc-42';

const proxy = new ResourceProxyService({
  upstream: { resourceBaseUrl: RESOURCE_BASE_URL, timeoutMs: 1000 },
  resourceManagement: { proxyMaxResponseBytes: 1024 },
} as unknown as RsaConfig);

/**
 * What a lenient upstream might make of a path: percent-decoded (twice), Unicode-normalised (NFKC),
 * `\` read as `/`, `;params` dropped (Tomcat, Jetty), a segment of only dots and spaces read as `.`
 * or `..` (Windows trims trailing dots and spaces), then dot segments resolved.
 */
function upstreamView(pathname: string): string {
  let decoded = pathname;
  for (let i = 0; i < 2; i++) {
    try {
      decoded = decodeURIComponent(decoded);
    } catch {
      break;
    }
  }
  const segments = decoded
    .normalize('NFKC')
    .replace(/\\/g, '/')
    .split('/')
    .map((segment) => {
      const name = segment.split(';')[0];
      if (/^[.\s]*$/.test(name) && name.includes('.')) return name.replace(/\s/g, '').length >= 2 ? '..' : '.';
      return name;
    });
  return posix.normalize(segments.join('/'));
}

describe('validateSubPath', () => {
  it.each(['', '/', '/transactions', '/a/b', '/a%20b', '/transactions/', '/a.b', '/.well-known-ish', '/a..b', '/x/...y', "/a-b_c~d!$&'()*+,=:@", '/%41%42'])(
    'accepts the ordinary path %j',
    (path) => {
      expect(() => validateSubPath(path)).not.toThrow();
    },
  );

  it('normalises the root to the resource itself', () => {
    expect(validateSubPath('')).toBe('');
    expect(validateSubPath('/')).toBe('');
    expect(validateSubPath('/a/b')).toBe('/a/b');
  });

  const refused: [string, string][] = [
    ['dot-dot', '/..'],
    ['dot-dot then a path', '/../accounts/other'],
    ['dot-dot in the middle', '/a/../../b'],
    ['dot-dot with a trailing slash', '/../'],
    ['single dot', '/.'],
    ['single dot segment', '/./transactions'],
    ['encoded dots, lower case', '/%2e%2e/x'],
    ['encoded dots, upper case', '/%2E%2E/x'],
    ['mixed encoded and plain dots', '/.%2e/x'],
    ['mixed plain and encoded dots', '/%2e./x'],
    ['mixed case encoded dots', '/%2E%2e/x'],
    ['encoded single dot', '/%2e/x'],
    ['encoded slash, lower case', '/..%2f..%2faccounts'],
    ['encoded slash, upper case', '/a%2Fb'],
    ['encoded backslash', '/..%5cx'],
    ['encoded backslash, upper case', '/..%5Cx'],
    ['double-encoded dots', '/%252e%252e/x'],
    ['double-encoded slash', '/a%252fb'],
    ['a bare percent sign', '/%25'],
    ['empty segment', '//x'],
    ['protocol-relative URL', '//evil.example/x'],
    ['empty segment in the middle', '/a//b'],
    ['absolute URL', 'http://evil.example/x'],
    ['absolute https URL', 'https://evil.example'],
    ['absolute URL after a slash', '/http://evil.example/x'],
    ['scheme-relative without slash', 'evil.example/x'],
    ['no leading slash', 'transactions'],
    ['no leading slash, dot-dot', '../x'],
    ['backslash', '/a\\b'],
    ['backslash dot-dot', '/..\\x'],
    ['leading backslash', '\\..\\x'],
    ['backslash-slash', '/\\evil.example/x'],
    ['raw NUL', '/a\u0000b'],
    ['encoded NUL', '/a%00b'],
    ['newline', '/a\nb'],
    ['newline inside dots (URL parsers drop it)', '/.\n./x'],
    ['tab inside dots (URL parsers drop it)', '/.\t./x'],
    ['carriage return', '/a\rb'],
    ['DEL', '/a\u007fb'],
    ['overlong path', `/${'a'.repeat(2048)}`],
    ['invalid percent-encoding', '/%zz'],
    ['truncated percent-encoding', '/a%'],
    ['overlong UTF-8 dot (%c0%ae)', '/%c0%ae%c0%ae/x'],
    ['IIS %u encoding', '/%u002e%u002e/x'],
    ['dot-dot with a path parameter (Tomcat, Jetty)', '/..;/x'],
    ['dot-dot with a named path parameter', '/..;jsessionid=1/x'],
    ['single dot with a path parameter', '/.;/x'],
    ['dot-dot with an encoded semicolon', '/..%3b/x'],
    ['dot-dot with trailing spaces (Windows trims them)', '/..%20/x'],
    ['three dots (Windows trims trailing dots)', '/.../x'],
    ['fullwidth dots (NFKC: "..")', '/%EF%BC%8E%EF%BC%8E/x'],
    ['two-dot leader (NFKC: "..")', '/%E2%80%A5/x'],
    ['raw two-dot leader', '/\u2025/x'],
    ['fullwidth solidus (NFKC: "/")', '/a%EF%BC%8F..'],
    ['fullwidth reverse solidus (NFKC: "\\")', '/a%EF%BC%BCb'],
    ['a question mark (would end the path the checks saw)', '/\u2025?x'],
    ['a hash (would end the path the checks saw)', '/a#/../x'],
  ];

  it.each(refused)('refuses %s: %j', (_label, path) => {
    expect(() => validateSubPath(path)).toThrow(ProxyPathError);
  });
});

describe('ResourceProxyService.buildUrl', () => {
  it('builds the resource URL from the template and the alias', () => {
    expect(proxy.buildUrl(TARGET, '').href).toBe(`https://rs.example${BASE_PATH}`);
    expect(proxy.buildUrl(TARGET, '/').href).toBe(`https://rs.example${BASE_PATH}`);
    expect(proxy.buildUrl(TARGET, '/transactions').href).toBe(`https://rs.example${BASE_PATH}/transactions`);
    expect(proxy.buildUrl(TARGET, '/a%20b').pathname).toBe(`${BASE_PATH}/a%20b`);
  });

  it('passes the query string through as it came', () => {
    expect(proxy.buildUrl(TARGET, '/transactions', 'from=2024-01-01&q=a%20b&p=../x').href).toBe(
      `https://rs.example${BASE_PATH}/transactions?from=2024-01-01&q=a%20b&p=../x`,
    );
  });

  it('encodes the external id, so an id cannot add path segments', () => {
    const url = proxy.buildUrl({ pathTemplate: '/accounts/{id}', externalId: '../admin?x#y' }, '/t');
    expect(url.pathname).toBe('/api/v1/accounts/..%2Fadmin%3Fx%23y/t');
    expect(url.search).toBe('');
  });

  it.each(['..', '.', '%2e%2e'])('refuses an external id that would itself climb (%j)', (externalId) => {
    // Ids come from the upstream's listing (or an admin): "." and ".." would make the resource's own
    // base path resolve to its parent, and everything below it would be "under" that.
    const attempt = () => proxy.buildUrl({ pathTemplate: '/accounts/{id}', externalId }, '/other-account');
    if (externalId !== '%2e%2e') {
      // ...including the resource itself: with "." that would be the owner's whole listing.
      expect(() => proxy.buildUrl({ pathTemplate: '/accounts/{id}', externalId }, '')).toThrow(ProxyPathError);
    }
    if (externalId === '%2e%2e') {
      // encodeURIComponent makes it %252e%252e: a literal, harmless name
      expect(attempt().pathname).toBe('/api/v1/accounts/%252e%252e/other-account');
    } else {
      expect(attempt).toThrow(ProxyPathError);
    }
  });

  it.each(refusedPathsSample())('refuses %j before building anything', (path) => {
    expect(() => proxy.buildUrl(TARGET, path)).toThrow(ProxyPathError);
  });

  const tokens = [
    '/', '/', '/', '.', '..', '...', '%2e', '%2E', '%2f', '%2F', '%5c', '%25', '%00', '%3b', '%3f', '%23', '%20', '%', '%zz', '%c0%ae',
    '\\', ';', '?', '#', ':', '@', 'http:', 'a', 'b', 'transactions', '~', ' ', '\t', '\n', '\u0000', '\u00e9', '\u2025', '\uff0e',
  ];
  const pathLike = fc.array(fc.constantFrom(...tokens), { maxLength: 12 }).map((parts) => parts.join(''));
  const anyText = fc.string({ unit: 'binary', maxLength: 40 });
  const externalId = fc.oneof(fc.constantFrom('acc-42', '.', '..', 'a/b', 'a%2fb', '%2e%2e', ' ', 'x y'), fc.string({ minLength: 1, maxLength: 10 }));

  it('for arbitrary input either refuses with ProxyPathError or stays under the resource base path', () => {
    fc.assert(
      fc.property(externalId, fc.oneof(pathLike, anyText, pathLike.map((p) => `/${p}`)), fc.oneof(fc.constant(''), pathLike), (id, path, query) => {
        const target = { pathTemplate: '/accounts/{id}', externalId: id };
        const literalBase = `/api/v1/accounts/${encodeURIComponent(id)}`;
        let url: URL;
        try {
          url = proxy.buildUrl(target, path, query);
        } catch (error) {
          expect(error).toBeInstanceOf(ProxyPathError);
          return;
        }
        expect(url.origin).toBe('https://rs.example');
        expect(url.username + url.password).toBe('');
        // As sent: the pathname is the literal base path or below it.
        expect(url.pathname === literalBase || url.pathname.startsWith(`${literalBase}/`)).toBe(true);
        // As a lenient upstream would read it: still the same resource or below.
        const seen = upstreamView(url.pathname);
        const base = upstreamView(literalBase).replace(/\/+$/, '');
        expect(seen === base || seen.startsWith(`${base}/`)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

function refusedPathsSample(): string[] {
  return ['/..', '/%2e%2e/x', '/a%2fb', '//evil.example', 'http://evil.example', '/a\\b', '/a%00b', '/..;/x'];
}
