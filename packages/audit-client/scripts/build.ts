/**
 * Builds @smedrec/audit-client: the server's `AppRouter` type and the REST operations' input and
 * output types, written out as plain TypeScript that depends on `@trpc/server`'s types alone (no
 * zod, drizzle, express or server code), plus the OpenAPI document.
 *
 * The types are read from the server's sources with the TypeScript checker and printed fully
 * expanded: every procedure becomes a `TRPCQueryProcedure`/`TRPCMutationProcedure` with the exact
 * input and output types the server declares, under the server's error shape and metadata. A type
 * the printer cannot express on its own (a class, a function, a named type from a library) stops
 * the build naming where it occurs, so the package never refers to something it does not ship.
 *
 *   node --import tsx packages/audit-client/scripts/build.ts [outDir]   (default: packages/audit-client/dist)
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { createOperations } from '../../../server/src/api/operations';
import { DEFAULT_EVENT_LIMITS } from '../../../server/src/events/limits';
import { openApiDocument } from '../../../server/src/http/openapi';

const PACKAGE_DIR = path.resolve(__dirname, '..');
const SERVER_DIR = path.resolve(PACKAGE_DIR, '../../server');

/** Library types a consumer has from TypeScript's own `lib` (ES2018+), printed by name. */
const GLOBAL_GENERICS = new Set([
  'Date',
  'Promise',
  'AsyncGenerator',
  'AsyncIterable',
  'AsyncIterator',
  'AsyncIterableIterator',
]);

/** Where named (possibly recursive) aliases come from: the server's sources and zod's JSON type. */
const HOISTED_FROM = new RegExp(`^(${escape(SERVER_DIR + path.sep)}|.*[\\\\/]node_modules[\\\\/]zod[\\\\/])`);

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

class Printer {
  private readonly stack: ts.Type[] = [];
  /** Type aliases of the server's sources (and zod's), printed once under their own name (recursive ones need it). */
  readonly aliases = new Map<string, { type: ts.Type; text: string | null }>();

  constructor(private readonly checker: ts.TypeChecker) {}

  /** `type` as self-contained TypeScript; `where` names the spot in an error. */
  print(type: ts.Type, where: string, indent = ''): string {
    const alias = type.aliasSymbol;
    if (
      alias &&
      !type.aliasTypeArguments &&
      (alias.declarations ?? []).some((d) => HOISTED_FROM.test(d.getSourceFile().fileName))
    ) {
      const name = alias.getName();
      const known = this.aliases.get(name);
      if (known && known.type !== type) throw new Error(`${where}: two different types are named ${name}`);
      if (!known) {
        this.aliases.set(name, { type, text: null });
        const text = this.expand(type, where, '');
        this.aliases.set(name, { type, text });
      }
      return name;
    }
    return this.expand(type, where, indent);
  }

  private expand(type: ts.Type, where: string, indent: string): string {
    if (this.stack.includes(type))
      throw new Error(`${where}: recursive type ${this.checker.typeToString(type)} cannot be expanded`);
    this.stack.push(type);
    try {
      return this.printInner(type, where, indent);
    } finally {
      this.stack.pop();
    }
  }

  private printInner(type: ts.Type, where: string, indent: string): string {
    const f = type.flags;
    const c = this.checker;
    if (f & ts.TypeFlags.Any) return 'any';
    if (f & ts.TypeFlags.Unknown) return 'unknown';
    if (f & ts.TypeFlags.Never) return 'never';
    if (f & ts.TypeFlags.String) return 'string';
    if (f & ts.TypeFlags.Number) return 'number';
    if (f & ts.TypeFlags.Boolean) return 'boolean';
    if (f & ts.TypeFlags.BigInt) return 'bigint';
    if (f & ts.TypeFlags.ESSymbol) return 'symbol';
    if (f & ts.TypeFlags.Null) return 'null';
    if (f & ts.TypeFlags.Undefined) return 'undefined';
    if (f & ts.TypeFlags.Void) return 'void';
    if (f & ts.TypeFlags.NonPrimitive) return 'object';
    if (
      f &
      (ts.TypeFlags.StringLiteral |
        ts.TypeFlags.NumberLiteral |
        ts.TypeFlags.BigIntLiteral |
        ts.TypeFlags.BooleanLiteral |
        ts.TypeFlags.TemplateLiteral)
    ) {
      return c.typeToString(type);
    }
    if (type.isUnion()) {
      const parts = [...new Set(type.types.map((t) => this.print(t, where, indent)))];
      // `true | false` as TypeScript writes it.
      const bool = parts.includes('true') && parts.includes('false');
      const merged = bool ? ['boolean', ...parts.filter((p) => p !== 'true' && p !== 'false')] : parts;
      return merged
        .map((p) => (/^[({]|^[\w$.<>[\], "'-]+$/.test(p) && !p.includes(' | ') ? p : `(${p})`))
        .join(' | ');
    }
    if (type.isIntersection()) return type.types.map((t) => `(${this.print(t, where, indent)})`).join(' & ');
    if (f & ts.TypeFlags.Object) return this.printObject(type as ts.ObjectType, where, indent);
    throw new Error(`${where}: cannot express ${c.typeToString(type)} (flags ${f})`);
  }

  private printObject(type: ts.ObjectType, where: string, indent: string): string {
    const c = this.checker;
    if (c.isTupleType(type)) {
      const ref = type as ts.TypeReference;
      const target = ref.target as ts.TupleType;
      const elems = c.getTypeArguments(ref).map((t, i) => {
        const printed = this.print(t, `${where}[${i}]`, indent);
        return target.elementFlags[i]! & ts.ElementFlags.Rest
          ? `...Array<${printed}>`
          : printed + (target.elementFlags[i]! & ts.ElementFlags.Optional ? '?' : '');
      });
      return `${target.readonly ? 'readonly ' : ''}[${elems.join(', ')}]`;
    }
    const symbolName = type.getSymbol()?.getName();
    if (c.isArrayType(type)) {
      const [elem] = c.getTypeArguments(type as ts.TypeReference);
      return `${symbolName === 'ReadonlyArray' ? 'ReadonlyArray' : 'Array'}<${this.print(elem!, `${where}[]`, indent)}>`;
    }
    if (symbolName && GLOBAL_GENERICS.has(symbolName) && isFromDefaultLib(type.getSymbol()!)) {
      const args = (type as ts.TypeReference).target ? c.getTypeArguments(type as ts.TypeReference) : [];
      return args.length === 0
        ? symbolName
        : `${symbolName}<${args.map((a, i) => this.print(a, `${where}<${i}>`, indent)).join(', ')}>`;
    }
    if (
      c.getSignaturesOfType(type, ts.SignatureKind.Call).length > 0 ||
      c.getSignaturesOfType(type, ts.SignatureKind.Construct).length > 0
    ) {
      throw new Error(
        `${where}: a function or class type (${c.typeToString(type)}) has no place in a client type`,
      );
    }
    const inner = indent + '  ';
    const lines: string[] = [];
    for (const info of c.getIndexInfosOfType(type)) {
      lines.push(
        `${inner}${info.isReadonly ? 'readonly ' : ''}[key: ${c.typeToString(info.keyType)}]: ${this.print(info.type, `${where}[key]`, inner)};`,
      );
    }
    for (const prop of c.getPropertiesOfType(type)) {
      const name = prop.getName();
      if (name.startsWith('__@'))
        throw new Error(`${where}: symbol-keyed property ${name} cannot be expressed`);
      const optional = (prop.flags & ts.SymbolFlags.Optional) !== 0;
      const key = /^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name);
      const propType = c.getTypeOfSymbol(prop);
      lines.push(`${inner}${key}${optional ? '?' : ''}: ${this.print(propType, `${where}.${name}`, inner)};`);
    }
    return lines.length === 0 ? '{}' : `{\n${lines.join('\n')}\n${indent}}`;
  }
}

function isFromDefaultLib(symbol: ts.Symbol): boolean {
  return (symbol.declarations ?? []).every((d) =>
    /[\\/]typescript[\\/]lib[\\/]lib\.[\w.]+\.d\.ts$/.test(d.getSourceFile().fileName),
  );
}

/** The type of property `name` of `type` (throws naming `where` when absent). */
function prop(checker: ts.TypeChecker, type: ts.Type, name: string, where: string): ts.Type {
  const symbol = checker.getPropertyOfType(type, name);
  if (!symbol) throw new Error(`${where} has no property ${name}`);
  return checker.getTypeOfSymbol(symbol);
}

/** Reads the server's types and prints the package's declarations. */
export function generateDeclarations(restRoutes: Record<string, { method: string; path: string }>): string {
  // A probe module beside the sources, so module resolution is exactly the server's.
  const probe = path.join(SERVER_DIR, 'src', '__audit_client_probe__.ts');
  const probeText = [
    "import type { z } from 'zod';",
    "import type { AppRouter } from './trpc/routers';",
    "import type { Operations } from './api/operations';",
    'export type Router = AppRouter;',
    'export type RestIn = { [K in keyof Operations]: z.input<Operations[K]["input"]> };',
    'export type RestOut = { [K in keyof Operations]: z.output<Operations[K]["output"]> };',
  ].join('\n');
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(SERVER_DIR, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('cannot read server/tsconfig.json');
  const host = ts.createCompilerHost(config.options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (f) => (path.resolve(f) === probe ? probeText : readFile(f));
  host.fileExists = (f) => path.resolve(f) === probe || fileExists(f);
  const program = ts.createProgram({
    rootNames: [probe],
    options: { ...config.options, noEmit: true },
    host,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(probe)!;
  const moduleSymbol = checker.getSymbolAtLocation(source)!;
  const exported = (name: string) =>
    checker.getDeclaredTypeOfSymbol(
      checker.getExportsOfModule(moduleSymbol).find((s) => s.getName() === name)!,
    );
  const printer = new Printer(checker);

  const router = exported('Router');
  const def = prop(checker, router, '_def', 'AppRouter');
  const rootTypes = prop(
    checker,
    prop(checker, def, '_config', 'AppRouter._def'),
    '$types',
    'AppRouter._def._config',
  );
  const transformer = printer.print(prop(checker, rootTypes, 'transformer', 'root'), 'transformer');
  if (transformer !== 'false')
    throw new Error(`the client types assume no data transformer; the router has ${transformer}`);

  const procedures = (record: ts.Type, where: string, indent: string): string => {
    const inner = indent + '  ';
    const lines = checker.getPropertiesOfType(record).map((p) => {
      const t = checker.getTypeOfSymbol(p);
      const name = `${where}${where ? '.' : ''}${p.getName()}`;
      const pdef = checker.getPropertyOfType(t, '_def') ? prop(checker, t, '_def', name) : null;
      if (!pdef || !checker.getPropertyOfType(pdef, 'procedure'))
        return `${inner}${p.getName()}: ${procedures(t, name, inner)};`;
      const kind = checker.typeToString(prop(checker, pdef, 'type', name));
      const wrapper = {
        '"query"': 'TRPCQueryProcedure',
        '"mutation"': 'TRPCMutationProcedure',
        '"subscription"': 'TRPCSubscriptionProcedure',
      }[kind];
      if (!wrapper) throw new Error(`${name}: unknown procedure type ${kind}`);
      const types = prop(checker, pdef, '$types', name);
      const deeper = inner + '  ';
      return (
        `${inner}${p.getName()}: ${wrapper}<{\n` +
        `${deeper}input: ${printer.print(prop(checker, types, 'input', name), `${name} input`, deeper)};\n` +
        `${deeper}output: ${printer.print(prop(checker, types, 'output', name), `${name} output`, deeper)};\n` +
        `${deeper}meta: Meta;\n` +
        `${deeper}errorShape: ErrorShape;\n` +
        `${inner}}>;`
      );
    });
    return `{\n${lines.join('\n')}\n${indent}}`;
  };

  const restIn = exported('RestIn');
  const restOut = exported('RestOut');
  const rest = checker.getPropertiesOfType(restIn).map((p) => {
    const id = p.getName();
    const route = restRoutes[id];
    if (!route) throw new Error(`operation ${id} has no REST route`);
    return (
      `  ${id}: {\n` +
      `    method: ${JSON.stringify(route.method.toUpperCase())};\n` +
      `    path: ${JSON.stringify(`/api/v1${route.path}`)};\n` +
      `    input: ${printer.print(checker.getTypeOfSymbol(p), `${id} input`, '    ')};\n` +
      `    output: ${printer.print(prop(checker, restOut, id, 'RestOut'), `${id} output`, '    ')};\n` +
      `  };`
    );
  });

  return `/**
 * Types of the SMEDREC Audit API, generated from the server's sources by
 * packages/audit-client/scripts/build.ts. Do not edit.
 *
 *   import { createTRPCClient, httpBatchLink } from '@trpc/client';
 *   import type { AppRouter } from '@smedrec/audit-client';
 */
import type { TRPCBuiltRouter, TRPCMutationProcedure, TRPCQueryProcedure, TRPCSubscriptionProcedure } from '@trpc/server';

/** Metadata every procedure carries. */
export type Meta = ${printer.print(prop(checker, rootTypes, 'meta', 'root'), 'meta')};

/** The shape of a tRPC error (\`error.data\` holds the REST error's code, issues and requestId). */
export type ErrorShape = ${printer.print(prop(checker, rootTypes, 'errorShape', 'root'), 'errorShape')};

/** The server's tRPC router, for \`createTRPCClient<AppRouter>\`. */
export type AppRouter = TRPCBuiltRouter<
  { ctx: object; meta: Meta; errorShape: ErrorShape; transformer: false },
  ${procedures(prop(checker, def, 'record', 'AppRouter._def'), '', '  ')}
>;

${[...printer.aliases].map(([name, a]) => `export type ${name} = ${a.text};\n`).join('\n')}
/** Every REST operation under /api/v1: method, path, the JSON input it accepts and the JSON it answers. */
export interface RestOperations {
${rest.join('\n')}
}

/** The body of \`POST /api/v1/events\` (\`events.create\`). */
export type EventInput = RestOperations['eventsCreate']['input'];
/** The receipt an append answers with. */
export type Receipt = RestOperations['eventsCreate']['output'];
/** A page of \`GET /api/v1/events\` (\`events.query\`). */
export type EventPage = RestOperations['eventsQuery']['output'];
/** A signed checkpoint as \`GET /api/v1/ledger/checkpoint\` answers it. */
export type Checkpoint = RestOperations['ledgerCheckpoint']['output'];
/** The error body of every REST failure. */
export interface RestError {
  error: { code: string; message: string; issues: Array<{ path: string; message: string }>; requestId: string | null };
}
`;
}

function main(): void {
  const outDir = path.resolve(process.argv[2] ?? path.join(PACKAGE_DIR, 'dist'));
  // The operation table and OpenAPI document for the default limits (what a default server serves).
  const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });
  const routes = Object.fromEntries(
    Object.entries(operations).map(([id, op]) => [id, { method: op.rest.method, path: op.rest.path }]),
  );
  const declarations = generateDeclarations(routes);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'index.d.ts'), declarations);
  // Types only: the module exists so that a plain import resolves, and exports nothing.
  fs.writeFileSync(
    path.join(outDir, 'index.js'),
    '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\n',
  );
  fs.writeFileSync(
    path.join(outDir, 'openapi.json'),
    JSON.stringify(openApiDocument(operations), null, 2) + '\n',
  );
  process.stdout.write(
    `audit-client: wrote ${path.relative(process.cwd(), outDir) || '.'}/index.d.ts (${declarations.length} bytes), index.js, openapi.json\n`,
  );
}

if (require.main === module) main();
