// ESLint for the whole TypeScript tree (`npm run lint`, part of `npm test`).
//
// typescript-eslint needs TypeScript's JavaScript API, which TypeScript 7 (the native compiler that builds
// this project) does not ship. package.json therefore follows TypeScript's side-by-side setup: the
// `typescript` package is `@typescript/typescript6` (the API, for ESLint only) and `@typescript/native` is
// TypeScript 7, whose `tsc` binary `npm run build` runs. No rule here needs type information, so lint reads
// each file on its own and takes seconds.
//
// Beyond the recommended sets, the rules are about structure (docs/architecture.md, "Layers"):
// - one-way layers: nothing below the HTTP shell imports from http/; the Raft core imports nothing of ours;
//   storage, transport, stego and workers never import from the cluster driver; the CLI is a stego client;
// - no barrels: import the module that defines a name, so every import is a real edge of the graph;
// - no import cycles.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import { createNodeResolver, importX } from 'eslint-plugin-import-x';

// (A folder import such as '../raft' needs no pattern: tsc refuses directory imports under nodenext.)
const barrels = {
  regex: '(^|/)index(\\.js)?$',
  message: 'No barrels: import the module that defines the name (docs/architecture.md, "Layers").',
};

/** An import pattern (regex on the specifier) for a folder of node/src, from any depth. */
const folder = (name) => `(^|/)${name}/`;

const layer = (names, message) => ({ regex: `${names.map(folder).join('|')}`, message });

const notHttp = layer(['http'], 'Only the HTTP shell, the edge modules (auth, lb) and main.ts may import from http/: domain code speaks domain errors and types.');
const notCluster = layer(['cluster'], 'Layers below the cluster driver never import from cluster/: pass them an interface instead.');
const pureCore = 'The Raft core is pure (etcd raft style): it imports nothing of ours outside raft/.';
/** cluster/ modules the HTTP shell may use: the ClusterApi surface, its errors, and the object types. */
const clusterSurface = {
  regex: '(^|/)cluster/(?!(api|errors|object-store)\\.js$)',
  message: 'The HTTP shell sees the cluster only through cluster/api.ts (ClusterApi), cluster/errors.ts and the object types: it never reaches into the driver.',
};
const notEntry = {
  regex: '(^|/)(main|cli/stego)(\\.js)?$',
  message: 'Entry points are composition roots; nothing imports from them.',
};

const httpFieldMessage = 'Domain code carries no HTTP status or exposure: give the error a code and map it in http/errors.ts.';

/** Class fields named like HTTP's: declared, constructor parameter properties, and `this.x = ...`. */
function httpFieldSelectors() {
  const name = '/^(status|statusCode|expose)$/';
  return [
    `PropertyDefinition[key.name=${name}]`,
    `TSParameterProperty > Identifier.parameter[name=${name}]`,
    `TSParameterProperty > AssignmentPattern.parameter > Identifier.left[name=${name}]`,
    `AssignmentExpression > MemberExpression.left[object.type='ThisExpression'][property.name=${name}]`,
  ];
}

/**
 * One `no-restricted-imports` per group of folders: flat config replaces a rule's options rather than
 * merging them, so each group lists every pattern that applies to it.
 */
function restrict(files, patterns, ignores = []) {
  return { files, ignores, rules: { 'no-restricted-imports': ['error', { patterns: [barrels, notEntry, ...patterns] }] } };
}

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.bench-tmp/**', '**/*.cjs', 'eslint.config.js'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // Sources import each other by their emitted name (./x.js) and the resolver maps it to x.ts.
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js', '.json', '.node'], extensionAlias: { '.js': ['.ts', '.js'] } })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // `_`-prefixed names are deliberately unused (tsc's noUnusedLocals has the same convention); a rest
      // sibling is how an option is left out of the object passed on.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // `let x; callbacks that read x?.…; x = await start(…)`: a const would throw if a callback ran first.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // An initial value before a loop that always assigns (`let last = ''`) is kept for the reader; tsc's
      // definite-assignment analysis already guards every read.
      'no-useless-assignment': 'off',
    },
  },
  {
    // Tests dig into untyped JSON documents (CRDs, manifests, answers) where `any` is the honest type.
    files: ['**/*.test.ts', '**/*.itest.ts', 'node/test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  restrict(['**/*.ts'], []),
  restrict(['node/src/raft/*.ts'], [
    layer(['auth', 'cli', 'cluster', 'http', 'lb', 'metrics', 'stego', 'storage', 'transport', 'workers'], pureCore),
    // node/src/config.ts and node/src/log.ts (raft/log.ts, the Raft log, is './log.js')
    { regex: '^\\.\\./(config|log)\\.js$', message: pureCore },
  ]),
  restrict(['node/src/{storage,transport,stego,workers}/**/*.ts'], [notHttp, notCluster]),
  restrict(['node/src/{cluster,metrics,cli}/**/*.ts', 'node/src/{config,log}.ts'], [notHttp]),
  {
    // Domain errors speak codes; statuses live in http/errors.ts's tables. A class field (declared,
    // constructor parameter, or assigned to `this`) named like an HTTP status marks a layer leak.
    files: ['node/src/{cluster,raft,storage,transport,stego,workers}/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', ...httpFieldSelectors().map((selector) => ({ selector, message: httpFieldMessage }))],
    },
  },
  // tests of the HTTP shell start real clusters (cluster/test-cluster.ts) and may look inside them
  restrict(['node/src/http/**/*.ts'], [clusterSurface], ['**/*.test.ts']),
);
