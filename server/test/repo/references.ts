/**
 * Finds references that leave the repository or point at something it does not hold: Markdown
 * links, `docs/<file>.md` citations (with `#anchor`, `§N` or `"Heading"`), repository paths naming
 * a file, bare relative paths that climb out of the checkout, and citations of the design inputs
 * a clone does not have. Pure: it works on a map of path → text, so the test can plant bad
 * references in a synthetic repository as well as scan the real one.
 */
import path from 'node:path';

/** One broken reference: where it is and what is wrong. */
export interface ReferenceProblem {
  file: string;
  line: number;
  reference: string;
  problem: string;
}

/** A repository snapshot: every tracked text file, by repository-relative POSIX path. */
export type RepoFiles = ReadonlyMap<string, string>;

/** A known line a check may skip, with the reason (each must still exist, so the list cannot rot). */
export interface Exemption {
  file: string;
  /** Exact text the line contains. */
  contains: string;
  reason: string;
}

/** Top-level folders of the repository whose paths are checked when text names a file in them. */
const TOP_LEVEL = ['server', 'manifests', 'docs', 'compose', 'scripts', 'bench', 'dist-k8s', '.ci'];

// The design inputs live beside the checkout (`../shared`); the names are split so this file does
// not cite them itself.
const DESIGN_DOCS = ['ARCHITECTURE', 'CONVENTIONS'];
const FORBIDDEN: Array<{ re: RegExp; problem: string }> = [
  { re: /\.\.\/shared\//g, problem: 'points into ../shared, which a clone of the repository does not have' },
  {
    re: new RegExp(`\\b(?:${DESIGN_DOCS.join('|')})(?:\\.md)?(?:\\s*[§:"]|\\.md)`, 'g'),
    problem: 'cites a design document that is not in the repository; cite docs/… or the RFC/spec section',
  },
  { re: /\bissues? #\d+/gi, problem: 'issue numbers do not belong in the repository; say what the text means' },
  { re: /\(#\d+\)/g, problem: 'issue numbers do not belong in the repository; say what the text means' },
];

/** `[text](target)` with an optional title. */
const MARKDOWN_LINK = /\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"\n]*")?\s*\)/g;
/** `[label]: target` reference definitions (Markdown only). */
const REFERENCE_DEFINITION = /^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm;
/** A `docs/…md` citation, repository-relative, and (looked ahead, not consumed) the rest of the line. */
const DOC_CITATION = /(?<![\w./-])(docs\/[\w.-]+\.md)(#[\w-]+)?(?=([^\n]*))/g;
/** A repository path naming a file (it has an extension), e.g. `server/src/ledger/tree.ts`. */
const REPO_PATH = new RegExp(`(?<![\\w./@$-])((?:${TOP_LEVEL.map((t) => t.replace('.', '\\.')).join('|')})/[\\w.@/-]*[\\w@-]\\.[A-Za-z]{1,5})(?![\\w/<*…{$-])`, 'g');
/** A relative path starting with `./` or `../`. */
const RELATIVE_PATH = /(?<![\w./$@-])(\.\.?\/[\w.@-]+(?:\/[\w.@-]+)*\/?)/g;
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** A Markdown heading: its GitHub anchor, its section number (`3`, `4.1`) and its text. */
interface Heading {
  slug: string;
  section: string | null;
  text: string;
}

/** GitHub's anchor for a heading text: lower case, punctuation dropped, spaces to hyphens. */
export function slugify(text: string): string {
  return text
    .replace(/`/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The headings of a Markdown text, outside fenced code blocks; duplicate anchors get `-1`, `-2`… */
export function headingsOf(markdown: string): Heading[] {
  const out: Heading[] = [];
  const seen = new Map<string, number>();
  let fence: string | null = null;
  for (const line of markdown.split('\n')) {
    const f = /^\s*(```+|~~~+)/.exec(line);
    if (f) {
      if (fence === null) fence = f[1]!.slice(0, 3);
      else if (f[1]!.startsWith(fence)) fence = null;
      continue;
    }
    if (fence !== null) continue;
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1]!;
    const base = slugify(text);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const section = /^(\d+(?:\.\d+)*)\.?\s/.exec(text)?.[1] ?? null;
    out.push({ slug: n === 0 ? base : `${base}-${n}`, section, text });
  }
  // Explicit anchors (<a id="…"> / <a name="…">) count as headings for links.
  for (const m of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.push({ slug: m[1]!, section: null, text: '' });
  return out;
}

/**
 * Checks every file of `repo` but the unscanned ones (they still count as present); returns the
 * problems, empty when every reference resolves. A path naming a file the repository ignores on
 * purpose (`.gitignore`) is a file the operator supplies, not a broken citation.
 */
export function findReferenceProblems(
  repo: RepoFiles,
  exemptions: readonly Exemption[] = [],
  options: {
    /** Files to treat as present but not to scan. */
    unscanned?: ReadonlySet<string>;
    /** Paths the repository ignores on purpose (operator-supplied files such as TLS keys). */
    isIgnored?: (file: string) => boolean;
  } = {},
): ReferenceProblem[] {
  const unscanned = options.unscanned ?? new Set<string>();
  const isIgnored = options.isIgnored ?? (() => false);
  const problems: ReferenceProblem[] = [];
  const dirs = new Set<string>();
  for (const f of repo.keys()) for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) dirs.add(d);
  const headingCache = new Map<string, Heading[]>();
  const headings = (file: string) => {
    let h = headingCache.get(file);
    if (!h) headingCache.set(file, (h = headingsOf(repo.get(file) ?? '')));
    return h;
  };
  const used = new Set<Exemption>();

  for (const [file, text] of repo) {
    if (unscanned.has(file)) continue;
    const lines = text.split('\n');
    const markdown = file.endsWith('.md');
    lines.forEach((lineText, i) => {
      const report = (reference: string, problem: string) => {
        const exemption = exemptions.find((e) => e.file === file && lineText.includes(e.contains));
        if (exemption) {
          used.add(exemption);
          return;
        }
        problems.push({ file, line: i + 1, reference, problem });
      };
      /** Resolves a repository-relative target; reports what is missing. */
      const checkTarget = (reference: string, target: string, anchor: string | null, relativeTo: string) => {
        const resolved = target === '' ? file : path.posix.normalize(path.posix.join(relativeTo, target));
        if (resolved === '..' || resolved.startsWith('../') || path.posix.isAbsolute(resolved)) {
          return report(reference, 'points outside the repository');
        }
        const clean = resolved.replace(/\/$/, '');
        if (!repo.has(clean) && !dirs.has(clean)) return report(reference, `${clean} is not in the repository`);
        if (anchor !== null && clean.endsWith('.md') && !headings(clean).some((h) => h.slug === anchor)) {
          report(reference, `${clean} has no heading with the anchor #${anchor}`);
        }
      };

      for (const { re, problem } of FORBIDDEN) {
        for (const m of lineText.matchAll(re)) report(m[0], problem);
      }

      // Markdown links: everywhere in Markdown; elsewhere only when the target is clearly a path.
      for (const m of lineText.matchAll(MARKDOWN_LINK)) {
        const target = m[1]!;
        if (URL_SCHEME.test(target)) continue;
        if (!markdown && !/^\.{1,2}\/|\.md(#[\w-]*)?$/.test(target)) continue;
        const [p, anchor] = target.split('#', 2) as [string, string | undefined];
        const base = p.startsWith('/') ? '' : path.posix.dirname(file);
        checkTarget(m[0], decodeURI(p.replace(/^\//, '')), anchor ?? null, base);
      }
      if (markdown) {
        for (const m of lineText.matchAll(REFERENCE_DEFINITION)) {
          const target = m[1]!;
          if (URL_SCHEME.test(target)) continue;
          const [p, anchor] = target.split('#', 2) as [string, string | undefined];
          checkTarget(m[0], decodeURI(p), anchor ?? null, path.posix.dirname(file));
        }
      }

      // docs/<file>.md citations, with an optional #anchor, §N list or "Heading".
      for (const m of lineText.matchAll(DOC_CITATION)) {
        const [, doc, hash, rest] = m as unknown as [string, string, string | undefined, string];
        checkTarget(m[0].slice(0, doc.length + (hash?.length ?? 0)), doc, hash ? hash.slice(1) : null, '');
        if (!repo.has(doc)) continue;
        const sections = /^((?:\s*(?:,|and)?\s*§\s*\d+(?:\.\d+)*)+)/.exec(rest)?.[1];
        for (const s of sections?.matchAll(/§\s*(\d+(?:\.\d+)*)/g) ?? []) {
          if (!headings(doc).some((h) => h.section === s[1])) report(`${doc} §${s[1]}`, `${doc} has no section ${s[1]}`);
        }
        const quoted = /^\s+"([A-Za-z][^"\n]*)"/.exec(rest)?.[1];
        if (quoted !== undefined && !headings(doc).some((h) => h.text.toLowerCase().includes(quoted.toLowerCase()))) {
          report(`${doc} "${quoted}"`, `${doc} has no heading "${quoted}"`);
        }
      }

      // Repository paths naming a file (build output under dist/ is not in the repository by design).
      for (const m of lineText.matchAll(REPO_PATH)) {
        const p = m[1]!.replace(/\.$/, '');
        if (/(^|\/)dist\//.test(p) || /^docs\/[\w.-]+\.md$/.test(p)) continue; // docs/*.md: checked above
        if (!repo.has(p) && !isIgnored(p)) report(p, `${p} is not in the repository`);
      }

      // Relative paths must stay inside the checkout.
      for (const m of lineText.matchAll(RELATIVE_PATH)) {
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!));
        if (resolved === '..' || resolved.startsWith('../')) report(m[1]!, 'points outside the repository');
      }
    });
  }

  for (const e of exemptions) {
    if (!used.has(e)) {
      problems.push({ file: e.file, line: 0, reference: e.contains, problem: `exemption no longer needed (${e.reason}); remove it` });
    }
  }
  return problems;
}

/** One line per problem: `file:line: reference — problem`. */
export function formatProblems(problems: readonly ReferenceProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}: ${p.reference} — ${p.problem}`).join('\n');
}
