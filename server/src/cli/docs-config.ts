/** Rewrites the generated tables in README.md: configuration from config.ts, roles from auth/permissions.ts (`npm run docs:config`). */
import fs from 'node:fs';
import path from 'node:path';
import { withConfigTable } from '../config-docs';
import { withRolesTable } from '../http/access-docs';

const readme = path.resolve(__dirname, '../../../README.md');
fs.writeFileSync(readme, withRolesTable(withConfigTable(fs.readFileSync(readme, 'utf8'))));
process.stdout.write(`updated ${readme}\n`);
