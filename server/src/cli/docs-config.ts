/** Rewrites the configuration table in README.md from config.ts (`npm run docs:config`). */
import fs from 'node:fs';
import path from 'node:path';
import { withConfigTable } from '../config-docs';

const readme = path.resolve(__dirname, '../../../README.md');
fs.writeFileSync(readme, withConfigTable(fs.readFileSync(readme, 'utf8')));
process.stdout.write(`updated ${readme}\n`);
