/**
 * Constructs read like cdk8s-plus: every constructor in manifests/src composes a few named
 * pieces instead of spelling out every object, so none is longer than 80 lines. Measured on the
 * source with the TypeScript compiler's parser; functions and methods are held to the same limit
 * so that code moved out of a constructor does not pile up elsewhere.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';

const MAX_LINES = 80;
const srcDir = path.resolve(__dirname, '..', 'src');

interface Body {
  readonly file: string;
  readonly kind: 'constructor' | 'function';
  readonly name: string;
  /** Lines from the opening to the closing brace, both included. */
  readonly lines: number;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every constructor, function, method and arrow function body with a block, with its length. */
function bodies(file: string): Body[] {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const rel = path.relative(srcDir, file);
  const lineOf = (pos: number) => source.getLineAndCharacterOfPosition(pos).line;
  const out: Body[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body && ts.isBlock(node.body)) {
      const block = node.body;
      const lines = lineOf(block.getEnd()) - lineOf(block.getStart(source)) + 1;
      if (ts.isConstructorDeclaration(node)) {
        const owner = ts.isClassLike(node.parent) && node.parent.name ? node.parent.name.text : '<anonymous>';
        out.push({ file: rel, kind: 'constructor', name: owner, lines });
      } else {
        const name = node.name && ts.isIdentifier(node.name) ? node.name.text : '<anonymous>';
        out.push({ file: rel, kind: 'function', name, lines });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

const all = sourceFiles(srcDir).flatMap(bodies);
const constructors = all.filter((b) => b.kind === 'constructor');

describe('construct source', () => {
  it('finds the constructors of every construct (the measurement cannot pass on nothing)', () => {
    expect(constructors.map((c) => c.name)).toEqual(
      expect.arrayContaining(['AuditServer', 'RedisCache', 'PgVectorDb', 'ObservabilityStack', 'ArgoCdApplication', 'StatefulService', 'ServerDeployment', 'MigrationJob']),
    );
  });

  it(`has no constructor longer than ${MAX_LINES} lines`, () => {
    expect(constructors.filter((c) => c.lines > MAX_LINES)).toEqual([]);
  });

  it(`has no function or method longer than ${MAX_LINES} lines either`, () => {
    expect(all.filter((b) => b.kind === 'function' && b.lines > MAX_LINES)).toEqual([]);
  });

  it('measures what it claims: a 81-line constructor fails', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctor-'));
    try {
      const body = Array.from({ length: 79 }, (_, i) => `    const x${i} = ${i};`).join('\n');
      fs.writeFileSync(path.join(dir, 'long.ts'), `class Long {\n  constructor() {\n${body}\n  }\n}\n`);
      expect(bodies(path.join(dir, 'long.ts'))).toEqual([{ file: path.relative(srcDir, path.join(dir, 'long.ts')), kind: 'constructor', name: 'Long', lines: 81 }]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
