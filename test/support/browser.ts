/**
 * Just enough of a browser for OAuth redirects over real HTTP: a cookie jar (cookies ignore ports,
 * as in a browser; the RSA and the upstream use distinct cookie names), manual redirects, and the
 * dev upstream's login form.
 */
export class TestBrowser {
  private readonly cookies = new Map<string, string>();

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const index = pair.indexOf('=');
      const name = pair.slice(0, index).trim();
      const value = pair.slice(index + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /**
   * Follows redirects from `url`, logging in at the dev upstream as `username` when its form shows,
   * until a redirect leaves for `stopAt` (the Wallet's redirect URI). Returns that final URL.
   */
  async authorize(url: string, stopAt: string, login: { username: string; password?: string }): Promise<URL> {
    let next: { url: string; init?: RequestInit } | undefined = { url };
    for (let hops = 0; hops < 30 && next; hops++) {
      const res = await this.request(next.url, next.init);
      const location = res.headers.get('location');
      if (location) {
        const target: string = new URL(location, next.url).href;
        await res.arrayBuffer();
        if (target.startsWith(stopAt)) return new URL(target);
        next = { url: target };
        continue;
      }
      const body = await res.text();
      const form = /<form method="post" action="([^"]*\/login)"/.exec(body);
      if (res.status === 200 && form) {
        next = {
          url: new URL(form[1].replace(/&amp;/g, '&'), next.url).href,
          init: {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ username: login.username, password: login.password ?? login.username }).toString(),
          },
        };
        continue;
      }
      throw new Error(`authorize stopped at ${next.url} with HTTP ${res.status}: ${body.slice(0, 300)}`);
    }
    throw new Error('too many redirects');
  }
}
