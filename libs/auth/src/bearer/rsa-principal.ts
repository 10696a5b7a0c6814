/** Who is calling, from a validated RSA access token. */
export interface RsaPrincipal {
  /** The RSA account id (the `sub` of RSA tokens). */
  accountId: string;
  clientId: string;
  grantId: string;
  scopes: ReadonlySet<string>;
  /** Token expiry, seconds since the epoch. */
  expiresAt: number;
  /**
   * The data revision this request was authorised under (DataRevision): read after the request
   * arrived, so data cached under the same revision is as fresh as a database read.
   */
  revision: string;
}
