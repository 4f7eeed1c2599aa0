/**
 * Where retention archives go (docs/privacy.md §6): each archive is a gzip NDJSON export bundle
 * (`<organization>/<start>-<end>.ndjson.gz`), a SHA-256 manifest beside it
 * (`….manifest.json`), and a `sha256sum`-compatible line (`….ndjson.gz.sha256`). A destination
 * receives a finished, verified file and makes it appear whole (write to a temporary name, flush,
 * rename), so a crash never leaves a partial archive under the final name.
 */
import fs from 'node:fs';
import path from 'node:path';

/** What an archive's manifest says. */
export interface ArchiveManifest {
  format: 'smedrec-audit-archive/1';
  organizationId: string;
  /** The bundle's leaf range [start, end). */
  start: number;
  end: number;
  events: number;
  /** The object holding the gzip NDJSON bundle (relative to the destination). */
  object: string;
  /** Hex SHA-256 of the gzip file, and its size. */
  sha256: string;
  bytes: number;
  /** Hex SHA-256 of the uncompressed NDJSON. */
  ndjsonSha256: string;
  /** The newest signed checkpoint in the bundle. */
  checkpoint: { treeSize: number; rootHash: string } | null;
  createdAt: string;
}

/** A place archives are written to. */
export interface ArchiveDestination {
  /** `dir:<path>` or `s3://bucket/prefix` (recorded with the archive). */
  readonly name: string;
  /** Stores the file at `object`, with its manifest. */
  put(object: string, file: string, manifest: ArchiveManifest): Promise<void>;
}

function writeWhole(target: string, write: (tmp: string) => void): void {
  const tmp = `${target}.tmp-${process.pid}`;
  write(tmp);
  const fd = fs.openSync(tmp, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, target);
}

/** A directory (a PVC in Kubernetes). */
export class DirectoryDestination implements ArchiveDestination {
  readonly name: string;
  constructor(private readonly dir: string) {
    this.name = `dir:${dir}`;
  }

  put(object: string, file: string, manifest: ArchiveManifest): Promise<void> {
    const target = path.join(this.dir, object);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    writeWhole(target, (tmp) => fs.copyFileSync(file, tmp));
    writeWhole(`${target}.sha256`, (tmp) =>
      fs.writeFileSync(tmp, `${manifest.sha256}  ${path.basename(object)}\n`),
    );
    writeWhole(target.replace(/\.ndjson\.gz$/, '.manifest.json'), (tmp) =>
      fs.writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n'),
    );
    return Promise.resolve();
  }
}
