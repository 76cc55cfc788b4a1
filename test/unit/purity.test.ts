// The pure core does no IO: the declaration reader (src/declaration/), the instance model
// (src/model/, except its loader load.ts), the php-fpm config parser (src/php-fpm/config/,
// except its edge load.ts) and listen addresses (src/php-fpm/listen.ts) must not reach node:fs, node:net or node:child_process, directly or
// through any module they import. The imports are read with TypeScript's own parser: static
// imports, re-exports, dynamic import() and require(); `import type` is erased and not followed.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PURE_DIRECTORIES = ['src/declaration', 'src/model', 'src/php-fpm/config'];
/** Pure modules outside those folders. */
const PURE_FILES = ['src/php-fpm/listen.ts'];
/** The IO edges inside the pure folders: each reads files for the pure modules beside it. */
const EDGES = new Set(['src/model/load.ts', 'src/php-fpm/config/load.ts']);
const FORBIDDEN = new Set([
  'node:fs', 'node:fs/promises', 'node:net', 'node:child_process',
  'fs', 'fs/promises', 'net', 'child_process',
]);

/** One module specifier a file loads at run time; null when it cannot be known (a computed import()). */
interface RuntimeImport {
  specifier: string | null;
  line: number;
}

/** What `text` loads at run time: everything but `import type` / `export type`. */
function runtimeImports(file: string, text: string): RuntimeImport[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: RuntimeImport[] = [];
  const add = (node: ts.Node, specifier: ts.Expression | undefined): void => {
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    found.push({ specifier: specifier !== undefined && ts.isStringLiteralLike(specifier) ? specifier.text : null, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      if (node.importClause?.isTypeOnly !== true) add(node, node.moduleSpecifier);
    } else if (ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier !== undefined && !node.isTypeOnly) add(node, node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      if (!node.isTypeOnly) add(node, node.moduleReference.expression);
    } else if (ts.isCallExpression(node)) {
      const isDynamicImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === 'require';
      if (isDynamicImport || isRequire) add(node, node.arguments[0]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** A relative specifier as the compiled ESM resolves it, back to its .ts source. */
function resolveRelative(from: string, specifier: string): string {
  return resolve(dirname(from), specifier).replace(/\.js$/, '.ts');
}

/**
 * Every way the entries reach a forbidden module, following relative imports; each as the
 * chain of files from an entry to the import, e.g. `src/model/build.ts:4 → src/model/keys.ts:9 → node:fs`.
 */
function findImpurities(entries: readonly string[], readSource: (file: string) => string | undefined): string[] {
  const problems: string[] = [];
  const visited = new Set<string>();
  const walk = (file: string, chain: string[]): void => {
    if (visited.has(file)) return;
    visited.add(file);
    const text = readSource(file);
    const shown = relative(ROOT, file);
    if (text === undefined) {
      problems.push([...chain, `${shown} (cannot be read, so cannot be checked)`].join(' → '));
      return;
    }
    for (const { specifier, line } of runtimeImports(file, text)) {
      const here = [...chain, `${shown}:${line}`];
      if (specifier === null) problems.push([...here, 'import() of a computed name (cannot be checked)'].join(' → '));
      else if (FORBIDDEN.has(specifier)) problems.push([...here, specifier].join(' → '));
      else if (specifier.startsWith('.')) walk(resolveRelative(file, specifier), here);
    }
  };
  for (const entry of entries) walk(entry, []);
  return problems;
}

function pureFiles(): string[] {
  const inDirectories = PURE_DIRECTORIES.flatMap((directory) => readdirSync(join(ROOT, directory))
    .filter((name) => name.endsWith('.ts'))
    .map((name) => `${directory}/${name}`)
    .filter((path) => !EDGES.has(path)));
  return [...inDirectories, ...PURE_FILES].map((path) => join(ROOT, path));
}

function readFromDisk(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

test('the pure core reaches no node:fs, node:net or node:child_process, directly or through its imports', () => {
  const files = pureFiles();
  expect(files.length).toBeGreaterThan(PURE_DIRECTORIES.length);
  expect(
    findImpurities(files, readFromDisk),
    'the reader, the model and the php-fpm config parser do no IO: move the IO into src/model/load.ts or src/php-fpm/config/load.ts and pass what it reads in (README, "Layout")',
  ).toEqual([]);
});

test('the edges exist, so that excluding them excludes something', () => {
  for (const edge of EDGES) expect(existsSync(join(ROOT, edge)), edge).toBe(true);
});

describe('the check itself finds every way of reaching a forbidden module', () => {
  const at = (name: string): string => join(ROOT, 'virtual', name);
  const check = (files: Record<string, string>): string[] =>
    findImpurities([at('entry.ts')], (file) => files[relative(join(ROOT, 'virtual'), file)]);

  test.each([
    ["import { readFileSync } from 'node:fs';", 'node:fs'],
    ["import * as fs from 'fs';", 'fs'],
    ["import { connect } from 'node:net';", 'node:net'],
    ["import { open } from 'node:fs/promises';", 'node:fs/promises'],
    ["export { spawn } from 'child_process';", 'child_process'],
    ["import 'node:child_process';", 'node:child_process'],
    ["const fs = await import('node:fs');", 'node:fs'],
    ["import { type Stats } from 'node:fs';", 'node:fs'],
    ["const net = require('net');", 'net'],
  ])('%s', (line, specifier) => {
    expect(check({ 'entry.ts': `// a comment\n${line}\n` })).toEqual([`virtual/entry.ts:2 → ${specifier}`]);
  });

  test('through a relative import, naming the chain', () => {
    const files = {
      'entry.ts': "import { helper } from './helper.js';\n",
      'helper.ts': "export { x } from './deep.js';\n",
      'deep.ts': "\n\nconst { spawn } = await import('node:child_process');\n",
    };
    expect(check(files)).toEqual(['virtual/entry.ts:1 → virtual/helper.ts:1 → virtual/deep.ts:3 → node:child_process']);
  });

  test('a computed import() and a missing module cannot be checked, so they fail', () => {
    expect(check({ 'entry.ts': "const name = 'node:fs';\nawait import(name);\nimport './gone.js';\n" })).toEqual([
      'virtual/entry.ts:2 → import() of a computed name (cannot be checked)',
      'virtual/entry.ts:3 → virtual/gone.ts (cannot be read, so cannot be checked)',
    ]);
  });

  test('type-only imports are erased, other modules are fine', () => {
    const files = {
      'entry.ts': "import type { Stats } from 'node:fs';\nexport type { Socket } from 'node:net';\nimport { posix } from 'node:path';\nimport { a } from './ok.js';\n",
      'ok.ts': "export const a = 1; // import('node:fs') in a comment is no import\nconst text = \"import 'node:fs'\";\n",
    };
    expect(check(files)).toEqual([]);
  });
});
