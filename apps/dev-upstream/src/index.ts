// DEVELOPMENT-ONLY upstream OpenID Provider for demos and tests. See dev-upstream.ts.
export {
  DEV_USERS,
  startDevUpstream,
  type DevUpstream,
  type DevUpstreamClient,
  type DevUpstreamOptions,
  type DevUpstreamStats,
  type DevUser,
} from './dev-upstream';
export {
  DEV_ACCOUNTS,
  devTransactionsOf,
  type DevAccount,
  type DevTransaction,
  type DevTransfer,
} from './resource-api';
