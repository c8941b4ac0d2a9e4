/**
 * Modules the workflow bundle loads once per workflow thread instead of once per workflow (see
 * `preloadModules` in src/bundle.ts): the validation rules (their zod schemas) with contracts, zod,
 * luxon and the phone-number metadata — ~1.5 MB of heap per cached workflow without this, a few KB
 * with it. Imported here the way the workflow code imports them (ES modules), so the sandbox's
 * module ids match; exported so the bundler keeps the imports.
 *
 * Only stateless modules belong here: the SDK deep-freezes the objects they export and shares them
 * with every workflow of the thread (src/validation.ts therefore exports functions, not schemas).
 * zod sets its default locale and memoizer in its (shared) global config the first time a schema is
 * built: one is built here, before the freeze, so workflows never write to the frozen config.
 */
import * as phoneNumbers from 'libphonenumber-js/max';
import * as luxon from 'luxon';
import * as zod from 'zod';
import * as validation from './validation';

zod.z.object({ warmUp: zod.z.string() });

export const preloaded = [phoneNumbers, luxon, zod, validation];
