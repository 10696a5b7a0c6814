/** @type {import('jest').Config} */
// Project code goes through ts-jest (transpile only; `npm run typecheck` does the type checking).
// The ESM-only OAuth packages are turned into CommonJS by @swc/jest so Jest can stay in CommonJS
// mode without --experimental-vm-modules (see ../shared/STACK.md).
const esmOnly = ['openid-client', 'oauth4webapi', 'jose', 'oidc-provider', 'quick-lru', 'nanoid', '@koa', 'koa', 'eta'];
module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: false }],
    '^.+\\.m?js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleNameMapper: {
    '^@rsa/dev-upstream$': '<rootDir>/apps/dev-upstream/src',
    '^@rsa/(.*)$': '<rootDir>/libs/$1/src',
  },
  setupFiles: ['<rootDir>/test/log-capture.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 30000,
};
