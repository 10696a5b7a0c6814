/**
 * Architecture rules, checked in `npm test` (see ../shared/STYLE.md):
 * apps import libs, never each other; libs never import apps; feature libs import each other in
 * one direction only and only through the other lib's index.ts; the dev upstream is never part of
 * the product.
 */
// Highest first: a lib may import only libs that come after it.
const LAYERS = ['userinfo', 'delegation', 'resources', 'auth', 'database', 'config', 'common'];

const layerRules = LAYERS.map((lib, index) => ({
  name: `layer-${lib}`,
  comment: `libs/${lib} may only import ${LAYERS.slice(index + 1).join(', ') || 'no other lib'}`,
  severity: 'error',
  from: { path: `^libs/${lib}/` },
  to: { path: `^libs/(${LAYERS.slice(0, index + 1).filter((l) => l !== lib).join('|') || 'NONE'})/` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'type-only imports (e.g. between TypeORM entities that name each other) vanish at run time',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'apps-do-not-import-each-other',
      severity: 'error',
      from: { path: '^apps/([^/]+)/' },
      to: { path: '^apps/([^/]+)/', pathNot: '^apps/$1/' },
    },
    {
      name: 'libs-do-not-import-apps',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^apps/' },
    },
    {
      name: 'dev-upstream-is-not-product',
      comment: 'apps/dev-upstream is for development and tests only (the launcher in scripts/ may start it)',
      severity: 'error',
      from: { path: '^(apps/(api|admin)|libs)/' },
      to: { path: '^apps/dev-upstream/' },
    },
    {
      name: 'libs-only-through-index',
      comment: 'another lib is imported through its index.ts (the @rsa/<lib> alias), never its internals',
      severity: 'error',
      from: { path: '^(apps|scripts|libs/([^/]+))/' },
      to: { path: '^libs/([^/]+)/src/.+', pathNot: ['^libs/$2/', '^libs/[^/]+/src/index\\.ts$'] },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^dist/|\\.spec\\.ts$)' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
