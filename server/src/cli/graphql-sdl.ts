/** Writes the GraphQL schema as SDL for the default limits (`npm run docs:graphql`). */
import fs from 'node:fs';
import path from 'node:path';
import { createOperations } from '../api/operations';
import { loadConfig } from '../config';
import { SDL_PATH, schemaSdl } from '../graphql/schema';

const config = loadConfig({}, { roleSecrets: false });
const operations = createOperations({
  event: {
    maxBytes: config.EVENT_MAX_BYTES,
    maxDepth: config.EVENT_MAX_DEPTH,
    maxStringLength: config.EVENT_MAX_STRING_LENGTH,
    maxKeys: config.EVENT_MAX_KEYS,
  },
});
const file = path.resolve(__dirname, '../../..', SDL_PATH);
fs.writeFileSync(file, schemaSdl(operations));
process.stdout.write(`updated ${file}\n`);
