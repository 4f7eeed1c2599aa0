// The cdk8s app: `npm run synth` (or `cdk8s synth` with the CLI, via ../cdk8s.yaml) writes every
// environment into dist-k8s/. Validation runs before anything is written; a violation names the
// object and the rule and exits non-zero.
import * as path from 'node:path';
import { synthesizeAll } from './src/environments';
import { ManifestValidationError } from './src/validate';

// `cdk8s synth` sets CDK8S_OUTDIR; `npm run synth` runs from manifests/.
const outRoot = process.env.CDK8S_OUTDIR ?? path.resolve(__dirname, '..', 'dist-k8s');

try {
  const summary = synthesizeAll(outRoot);
  const counts = Object.entries(summary.objectCounts).map(([k, v]) => `${k}: ${v} objects`).join(', ');
  console.log(`synthesized ${summary.files.length} files into ${outRoot} (${counts})`);
} catch (err) {
  if (err instanceof ManifestValidationError) {
    console.error(err.message);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
