import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Provider } from 'oidc-provider';

/**
 * The dev upstream's tiny "bank" resource API, mounted at `${issuer}/api`.
 * It accepts only access tokens issued by the same dev upstream (looked up in its own store).
 */

export interface DevAccount {
  id: string;
  name: string;
  currency: string;
  balance: number;
}

export interface DevTransaction {
  id: string;
  accountId: string;
  date: string;
  description: string;
  amount: number;
  currency: string;
}

export interface DevTransfer {
  id: string;
  from: string;
  to: string;
  amount: number;
  currency: string;
  reference?: string;
  status: 'accepted';
  createdAt: string;
}

/** Accounts by owner `sub`. Ids are unique across users. */
export const DEV_ACCOUNTS: Readonly<Record<string, readonly DevAccount[]>> = {
  'alice-0001': [
    { id: 'alice-checking', name: 'Alice Checking', currency: 'EUR', balance: 2450.75 },
    { id: 'alice-savings', name: 'Alice Savings', currency: 'EUR', balance: 12000.0 },
  ],
  'bob-0002': [
    { id: 'bob-checking', name: 'Bob Checking', currency: 'EUR', balance: 310.2 },
    { id: 'bob-savings', name: 'Bob Savings', currency: 'EUR', balance: 5000.0 },
  ],
  'carol-0003': [{ id: 'carol-checking', name: 'Carol Checking', currency: 'USD', balance: 987.65 }],
};

const TRANSACTION_TEMPLATES: ReadonlyArray<Omit<DevTransaction, 'id' | 'accountId' | 'currency'>> = [
  { date: '2024-01-03', description: 'Salary', amount: 3200.0 },
  { date: '2024-01-05', description: 'Grocery store', amount: -84.31 },
  { date: '2024-01-09', description: 'Electricity bill', amount: -61.5 },
  { date: '2024-01-12', description: 'Coffee shop', amount: -4.2 },
];

/** A few deterministic transactions per account. */
export function devTransactionsOf(account: DevAccount): DevTransaction[] {
  return TRANSACTION_TEMPLATES.map((t, i) => ({
    id: `${account.id}-tx-${i + 1}`,
    accountId: account.id,
    currency: account.currency,
    ...t,
  }));
}

export interface ResourceApiDeps {
  provider: Provider;
  /** true when the `sub` still names a known dev user */
  accountExists: (sub: string) => boolean;
  /** The accounts of `sub` (default: DEV_ACCOUNTS); lets an instance change them at run time. */
  accountsOf?: (sub: string) => readonly DevAccount[];
  onCall: () => void;
  log: (line: string) => void;
}

interface AuthenticatedLocals {
  sub: string;
}

const REALM = 'dev-upstream';

function sendJsonError(res: Response, status: number, error: string, description?: string): void {
  res.status(status).json(description ? { error, error_description: description } : { error });
}

function invalidToken(res: Response, missing: boolean): void {
  // RFC 6750 §3.1: no error code in the challenge when the request carried no credentials.
  res.setHeader('WWW-Authenticate', missing ? `Bearer realm="${REALM}"` : 'Bearer error="invalid_token"');
  sendJsonError(res, 401, 'invalid_token');
}

function bearerFrom(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header);
  return match?.[1];
}

export function createResourceApi(deps: ResourceApiDeps): Router {
  const { provider, accountExists, onCall, log } = deps;
  const router = express.Router();
  const transfers: DevTransfer[] = [];

  router.use((_req, _res, next) => {
    onCall();
    next();
  });

  router.use(async (req: Request, res: Response<unknown, AuthenticatedLocals>, next: NextFunction) => {
    const header = req.headers.authorization;
    const value = bearerFrom(req);
    if (!value) {
      // A malformed Bearer header is an invalid token; no/other scheme is a missing one.
      invalidToken(res, !header || !/^Bearer\b/i.test(header));
      return;
    }
    const token = await provider.AccessToken.find(value);
    if (
      !token
      || token.isExpired
      // Sender-constrained tokens would need DPoP/mTLS proof we do not check here.
      || token.isSenderConstrained()
      || !accountExists(token.accountId)
      || !(await provider.Grant.find(token.grantId))
      || !token.clientId
      || !(await provider.Client.find(token.clientId))
    ) {
      log('resource api: rejected an invalid or expired access token');
      invalidToken(res, false);
      return;
    }
    res.locals.sub = token.accountId;
    next();
  });

  const accountsOf = deps.accountsOf ?? ((sub: string): readonly DevAccount[] => DEV_ACCOUNTS[sub] ?? []);
  const ownAccount = (res: Response<unknown, AuthenticatedLocals>, id: string): DevAccount | undefined =>
    accountsOf(res.locals.sub).find((a) => a.id === id);

  router.get('/accounts', (_req, res: Response<unknown, AuthenticatedLocals>) => {
    res.json({ items: accountsOf(res.locals.sub).map((a) => ({ ...a })) });
  });

  router.get('/accounts/:id', (req: Request<{ id: string }>, res: Response<unknown, AuthenticatedLocals>) => {
    const account = ownAccount(res, req.params.id);
    if (!account) return sendJsonError(res, 404, 'not_found');
    res.json({ ...account });
  });

  router.get(
    '/accounts/:id/transactions',
    (req: Request<{ id: string }>, res: Response<unknown, AuthenticatedLocals>) => {
      const account = ownAccount(res, req.params.id);
      if (!account) return sendJsonError(res, 404, 'not_found');
      res.json({ items: devTransactionsOf(account) });
    },
  );

  router.post(
    '/accounts/:id/transfers',
    express.json({ limit: '16kb' }),
    (req: Request<{ id: string }>, res: Response<unknown, AuthenticatedLocals>) => {
      const account = ownAccount(res, req.params.id);
      if (!account) return sendJsonError(res, 404, 'not_found');

      const body: unknown = req.body;
      if (typeof body !== 'object' || body === null) {
        return sendJsonError(res, 400, 'invalid_request', 'expected a JSON object body');
      }
      const { to, amount, reference } = body as Record<string, unknown>;
      if (typeof to !== 'string' || to.trim() === '') {
        return sendJsonError(res, 400, 'invalid_request', '"to" must be a non-empty string');
      }
      if (to === account.id) {
        return sendJsonError(res, 400, 'invalid_request', '"to" must differ from the source account');
      }
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount <= 0) {
        return sendJsonError(res, 400, 'invalid_request', '"amount" must be a positive number');
      }
      // Kept in memory only; balances are deliberately not changed so reads stay deterministic.
      const transfer: DevTransfer = {
        id: `tr-${transfers.length + 1}`,
        from: account.id,
        to,
        amount,
        currency: account.currency,
        ...(typeof reference === 'string' ? { reference } : {}),
        status: 'accepted',
        createdAt: new Date().toISOString(),
      };
      transfers.push(transfer);
      res.status(201).json(transfer);
    },
  );

  router.use((_req, res) => sendJsonError(res, 404, 'not_found'));

  // Errors as JSON, never a stack trace (e.g. malformed JSON bodies from express.json()).
  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err === 'object' && err !== null && 'status' in err ? Number(err.status) : 500;
    if (status >= 400 && status < 500) {
      sendJsonError(res, status, 'invalid_request', 'malformed request');
      return;
    }
    log(`resource api: internal error: ${err instanceof Error ? err.message : String(err)}`);
    sendJsonError(res, 500, 'server_error');
  });

  return router;
}
