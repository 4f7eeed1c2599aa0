// The cdk8s app: `npm run synth` (or `cdk8s synth` with the CLI, via ../cdk8s.yaml) writes every
// environment of the configuration file into dist-k8s/. The file is manifests/environments.yaml
// unless `--config FILE` (npm run synth -- --config FILE) or AUDIT_MANIFESTS_CONFIG names another.
// The file is checked, then every object; a bad key or a violation names itself, nothing is
// written and the exit status is 1.
import * as path from 'node:path';
import { DEFAULT_CONFIG_FILE, loadSynthConfig, SynthConfigError } from './src/environment-config';
import { synthesizeAll } from './src/environments';
import { ManifestValidationError } from './src/validate';

// `cdk8s synth` sets CDK8S_OUTDIR; `npm run synth` runs from manifests/.
const outRoot = process.env.CDK8S_OUTDIR || path.resolve(__dirname, '..', 'dist-k8s');

/** The configuration file named on the command line or in the environment, or the example. */
function configFile(argv: readonly string[]): string {
  let file: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--config' || arg.startsWith('--config=')) {
      file = arg === '--config' ? argv[++i] : arg.slice('--config='.length);
      if (file === undefined || file === '') throw new SynthConfigError('--config needs a file');
    } else {
      throw new SynthConfigError(`unexpected argument '${arg}' (usage: npm run synth -- [--config FILE])`);
    }
  }
  // npm runs the script in manifests/; a relative path is meant from where npm was started.
  if (file !== undefined) return path.resolve(process.env.INIT_CWD ?? process.cwd(), file);
  const fromEnv = process.env.AUDIT_MANIFESTS_CONFIG;
  return fromEnv ? path.resolve(fromEnv) : DEFAULT_CONFIG_FILE;
}

try {
  const config = loadSynthConfig(configFile(process.argv.slice(2)));
  const summary = synthesizeAll(outRoot, config);
  const counts = Object.entries(summary.objectCounts).map(([k, v]) => `${k}: ${v} objects`).join(', ');
  console.log(`synthesized ${summary.files.length} files into ${outRoot} (${counts})`);
} catch (err) {
  if (err instanceof ManifestValidationError || err instanceof SynthConfigError) {
    console.error(err.message);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
