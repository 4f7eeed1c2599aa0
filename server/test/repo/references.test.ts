/**
 * Every link and citation in the repository resolves inside the repository: Markdown links (and
 * their #anchors), `docs/<file>.md` citations (and their §N sections or "Heading"s), paths naming
 * a repository file, and no relative path that climbs out of the checkout. Citations of the design
 * inputs that live beside the checkout, and issue numbers, are rejected outright. The checker is
 * first shown to catch each kind of bad reference in a planted repository, then run on every
 * tracked text file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

import { findReferenceProblems, formatProblems, headingsOf, slugify, type Exemption } from './references';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

const repo = (files: Record<string, string>) => new Map(Object.entries(files));
const problemsOf = (files: Record<string, string>, exemptions: Exemption[] = []) =>
  findReferenceProblems(repo(files), exemptions).map((p) => `${p.file}:${p.line}: ${p.problem}`);

const DOC = '# Title\n\n## 1. First\n\n### 1.2 Detail\n\n## 2. Second (normative)\n\n```md\n## 9. Not a heading\n```\n';

describe('the reference checker', () => {
  it('computes GitHub anchors and section numbers from headings', () => {
    expect(slugify('4. The verifier (`audit-verify`)')).toBe('4-the-verifier-audit-verify');
    expect(headingsOf(DOC).map((h) => [h.slug, h.section])).toEqual([
      ['title', null],
      ['1-first', '1'],
      ['12-detail', '1.2'],
      ['2-second-normative', '2'],
    ]);
  });

  it('accepts references that resolve', () => {
    expect(
      problemsOf({
        'docs/a.md': DOC + '\nSee [first](#1-first), [b](b.md#b), [up](../README.md) and [c][c].\n\n[c]: ../server/x.ts\n',
        'docs/b.md': '# B\n',
        'README.md': 'See [a](docs/a.md#2-second-normative) and <https://example.org>.\n',
        'server/x.ts': '// docs/a.md §1.2, §2 and docs/a.md "Second"; server/x.ts; import "./y"\n',
      }),
    ).toEqual([]);
  });

  it.each<[string, Record<string, string>, string]>([
    ['a Markdown link to a missing file', { 'README.md': 'See [spec](docs/missing.md).\n' }, 'README.md:1: docs/missing.md is not in the repository'],
    ['a Markdown link to a missing anchor', { 'README.md': 'See [a](docs/a.md#3-third).\n', 'docs/a.md': DOC }, 'README.md:1: docs/a.md has no heading with the anchor #3-third'],
    ['an anchor only inside a code block', { 'README.md': 'See [a](docs/a.md#9-not-a-heading).\n', 'docs/a.md': DOC }, 'README.md:1: docs/a.md has no heading with the anchor #9-not-a-heading'],
    ['a Markdown link out of the checkout', { 'README.md': 'See [design](../shared/DESIGN.md).\n' }, 'README.md:1: points outside the repository'],
    ['a reference definition to a missing file', { 'docs/a.md': DOC + '[x]: ./gone.md\n' }, 'docs/a.md:12: docs/gone.md is not in the repository'],
    ['a citation of a missing doc', { 'server/x.ts': '// see docs/ledger.md\n' }, 'server/x.ts:1: docs/ledger.md is not in the repository'],
    ['a citation of a missing section', { 'server/x.ts': '// docs/a.md §1, §3\n', 'docs/a.md': DOC }, 'server/x.ts:1: docs/a.md has no section 3'],
    ['a second citation on the same line', { 'server/x.ts': '// docs/a.md §1 and docs/a.md §7\n', 'docs/a.md': DOC }, 'server/x.ts:1: docs/a.md has no section 7'],
    ['a citation of a missing subsection', { 'server/x.ts': '// docs/a.md §1.3\n', 'docs/a.md': DOC }, 'server/x.ts:1: docs/a.md has no section 1.3'],
    ['a citation of a missing heading', { 'server/x.ts': '// docs/a.md "Bundle format"\n', 'docs/a.md': DOC }, 'server/x.ts:1: docs/a.md has no heading "Bundle format"'],
    ['a path to a missing repository file', { 'docs/a.md': 'Read `server/src/gone.ts`.\n' }, 'docs/a.md:1: server/src/gone.ts is not in the repository'],
    ['a relative path out of the checkout', { 'server/x.ts': "const d = '../../../elsewhere/file';\n" }, 'server/x.ts:1: points outside the repository'],
    ['a citation of the design inputs', { 'server/x.ts': `// (${'ARCHITECTURE'} §5)\n` }, 'server/x.ts:1: cites a design document that is not in the repository; cite docs/… or the RFC/spec section'],
    ['a house-style citation', { 'server/x.ts': `// (${'CONVENTIONS'}: tests)\n` }, 'server/x.ts:1: cites a design document that is not in the repository; cite docs/… or the RFC/spec section'],
    ['an issue number', { 'server/x.ts': '// added for issue #12\n' }, 'server/x.ts:1: issue numbers do not belong in the repository; say what the text means'],
    ['an issue number in parentheses', { 'bench/x.ts': '// export throughput (#3)\n' }, 'bench/x.ts:1: issue numbers do not belong in the repository; say what the text means'],
  ])('fails on %s', (_name, files, expected) => {
    expect(problemsOf(files)).toContain(expected);
  });

  it('accepts a path the repository ignores on purpose (an operator-supplied file)', () => {
    const files = { 'docs/a.md': 'Mount `compose/certs/tls.crt`.\n' };
    expect(problemsOf(files)).toEqual(['docs/a.md:1: compose/certs/tls.crt is not in the repository']);
    expect(findReferenceProblems(repo(files), [], { isIgnored: (f) => f.startsWith('compose/certs/') })).toEqual([]);
  });

  it('skips exempted lines, and fails when an exemption is no longer needed', () => {
    const files = { 'server/m.sql': `-- (${'ARCHITECTURE'} §6)\n` };
    const exemption: Exemption = { file: 'server/m.sql', contains: '§6', reason: 'frozen' };
    expect(problemsOf(files, [exemption])).toEqual([]);
    expect(problemsOf({ 'server/m.sql': '-- fine\n' }, [exemption])).toEqual([
      'server/m.sql:0: exemption no longer needed (frozen); remove it',
    ]);
  });
});

/** Tracked (and new, not ignored) files of the checkout that are text. */
function repositoryTextFiles(): Map<string, string> {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const files = new Map<string, string>();
  for (const file of new Set(listed.split('\0').filter((f) => f !== ''))) {
    const abs = path.join(REPO_ROOT, file);
    if (!existsSync(abs) || !statSync(abs).isFile()) continue; // deleted in the working tree
    const bytes = readFileSync(abs);
    files.set(file, bytes.includes(0) ? '' : bytes.toString('utf8')); // binary: present, not scanned
  }
  return files;
}

describe('the repository', () => {
  it('holds every file its links and citations point to, and nothing cites outside it', () => {
    const files = repositoryTextFiles();
    expect(files.has('README.md')).toBe(true);
    // The checker's own sources name the patterns they reject (and plant bad references).
    const own = new Set(['server/test/repo/references.ts', 'server/test/repo/references.test.ts']);
    const isIgnored = (file: string) => spawnSync('git', ['check-ignore', '-q', '--no-index', file], { cwd: REPO_ROOT }).status === 0;
    const problems = findReferenceProblems(files, [], { unscanned: own, isIgnored });
    expect(formatProblems(problems)).toBe('');
  });
});
