/**
 * The checkpoint signing key. Production reads it from `AUDIT_SIGNING_KEY` (a Secret) and never
 * generates one; the embedded default generates a key once into the data directory, with a
 * warning, so checkpoints stay verifiable across restarts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { generateSignerKey, parseSignerKey, type Signer } from '../ledger';

/** Where the key comes from, for {@link loadSigner}. */
export interface SignerSource {
  signingKey: string | undefined;
  dataDir: string;
  keyName: string;
  production: boolean;
}

/** Loads (or, outside production, creates once) the signer. `warn` is told when a key is generated. */
export function loadSigner(source: SignerSource, warn: (message: string) => void): Signer {
  if (source.signingKey) return parseSignerKey(source.signingKey.trim());
  if (source.production) throw new Error('AUDIT_SIGNING_KEY is required in production');
  const file = path.resolve(source.dataDir, 'signing-key');
  if (fs.existsSync(file)) return parseSignerKey(fs.readFileSync(file, 'utf8').trim());
  const { signerKey } = generateSignerKey(source.keyName);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // wx: never overwrite a key another process wrote a moment ago.
  try {
    fs.writeFileSync(file, signerKey + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return parseSignerKey(fs.readFileSync(file, 'utf8').trim());
    throw err;
  }
  warn(`generated a new checkpoint signing key in ${file}; set AUDIT_SIGNING_KEY in production`);
  return parseSignerKey(signerKey);
}
