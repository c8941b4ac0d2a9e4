/** `npm run schema`: writes the published JSON Schema of the confirmation request (see src/schema.ts). */
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { CONFIRMATION_REQUEST_SCHEMA_PATH, confirmationRequestJsonSchema } from '../src/schema';

const path = fileURLToPath(new URL(`../${CONFIRMATION_REQUEST_SCHEMA_PATH}`, import.meta.url));
await writeFile(path, confirmationRequestJsonSchema());
process.stdout.write(`wrote ${CONFIRMATION_REQUEST_SCHEMA_PATH}\n`);
