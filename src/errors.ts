/**
 * Errors a person can act on. Every failure a user can cause (a bad setting, a server that is not
 * there, a wrong secret, an unknown id, a bad file) ends an entry point with one or two sentences
 * naming what to fix and a non-zero exit code. Stack traces only at debug level. Nothing printed
 * may hold a credential, a token or a health-field value: messages name fields and never quote
 * values, and {@link scrub} removes the configured secrets and anything shaped like a token from
 * whatever is printed anyway (a server's own error text, a stack at debug level).
 */

/** A failure explained for the person running the command: its message is what they read. */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** 2: bad input or settings; 3: a server or file that cannot be reached or read; 1: work that could not finish (a stalled forecast). */
    readonly exitCode = 2,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Environment variables whose values are secrets (never printed, scrubbed from any output). */
export const SECRET_VARIABLES = ['LIVEKIT_API_SECRET', 'PAYLOAD_ENCRYPTION_KEY', 'SIP_TRUNK_AUTH_PASSWORD', 'DATABASE_URL'] as const;

/**
 * Removes secrets from text about to be printed: the values of {@link SECRET_VARIABLES} (and each
 * part of a key list), `extra` values (a credentials file's password), signed tokens (JWTs), and
 * the password of any `postgres://user:password@` URL.
 */
export function scrub(text: string, env: Record<string, string | undefined> = process.env, extra: string[] = []): string {
  const secrets = new Set<string>(extra.filter((s) => s.length >= 3));
  for (const name of SECRET_VARIABLES) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (value.length >= 3) secrets.add(value);
    // A key list `id:base64,id:base64`: each key on its own too.
    if (name === 'PAYLOAD_ENCRYPTION_KEY') for (const part of value.split(/[,:]/)) if (part.length >= 8) secrets.add(part);
    const password = /^[a-z]+:\/\/[^:/@]*:([^@]*)@/i.exec(value)?.[1];
    if (password) {
      secrets.add(password);
      secrets.add(decodeURIComponent(password));
    }
  }
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join('[redacted]');
  return out
    .replace(/eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}/g, '[token]')
    .replace(/(postgres(?:ql)?:\/\/[^:/@\s]*):[^@\s]*@/gi, '$1:[redacted]@');
}

/** Longest message any entry point prints or logs, in characters (a 10 MB value never comes back whole). */
export const MAX_MESSAGE_CHARS = 600;

/**
 * Values that must never be printed, recognised by their shape (the last line of defence, for
 * text that is not ours: a server's error, a library's message, an argument echoed by the
 * command-line parser). Each is replaced by a label that says what was there.
 */
const SHAPES: [RegExp, string][] = [
  // Signed tokens (JWT): header.payload.signature, base64url.
  [/eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]{4,}/g, '[token]'],
  // Passwords in URLs: scheme://user:password@host.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@\s]*@/gi, '$1:[redacted]@'],
  // SIP URIs name the dialed number or user: sip:+12125550123@host, sips:…
  [/\bsips?:[^\s"'<>,;]+/gi, 'sip:[redacted]'],
  // ISO 8601 dates and times (appointment times are health data): 2026-12-01, 2026-12-01T10:30:00-06:00.
  [/\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?/g, '[time]'],
  // Phone numbers: "+" and 7–15 digits (spaces, dots, dashes, brackets allowed between them), or 10–15 digits in a row.
  [/\+[\s(]*\d(?:[\s().-]*\d){6,14}/g, '[phone]'],
  [/(?<![\w.:+-])\d{10,15}(?!\w|\.\d)/g, '[phone]'],
  // Long unbroken values (a 10 MB field, a base64 blob): never a word of a message.
  [/\S{200,}/g, '[long value]'],
];

/** Example values our own messages show (fictional, documented): kept, so a message still shows the expected form. */
const DOCUMENTED_EXAMPLES = new Set(['2026-12-01T10:30:00-06:00', '+13125550100', '+13125550123', '+12125550123']);

/**
 * Makes text safe to print or log: removes secrets ({@link scrub}), then anything shaped like a
 * token, a SIP URI, a date or time, or a phone number, and bounds its length to `max` characters.
 * Every message an entry point prints and every string a log line holds goes through it.
 */
export function redact(text: string, options: { env?: Record<string, string | undefined>; secrets?: string[]; max?: number } = {}): string {
  const max = options.max ?? MAX_MESSAGE_CHARS;
  // Bounded first: no pattern ever runs over megabytes.
  let out = text.length > max * 4 ? text.slice(0, max * 4) : text;
  out = scrub(out, options.env ?? process.env, options.secrets);
  for (const [shape, label] of SHAPES) out = out.replace(shape, (found, ...groups) => (DOCUMENTED_EXAMPLES.has(found) ? found : label.replace('$1', String(groups[0]))));
  return out.length > max ? `${out.slice(0, max)}… (${text.length - max} more characters)` : out;
}

/**
 * The message of an error that is not ours (a library's, a server's), safe to log or to carry in a
 * failure: quoted parts — where parsers and servers put the input they refuse (`Unexpected token
 * 'J', "Jordan Qui"…`, `invalid input syntax for type integer: "…"`) — are dropped, then the rest is
 * {@link redact}ed. Our own errors ({@link UserError}, validation and configuration errors) never
 * quote values and keep their text, redacted all the same.
 */
export function safeMessage(err: unknown, options: { max?: number } = {}): string {
  const e = err as { message?: unknown; name?: unknown } | undefined;
  const raw = typeof e?.message === 'string' ? e.message : typeof err === 'string' ? err : errorCode(err);
  const ours = err instanceof UserError || ['ConfigError', 'ValidationError', 'DialError'].includes(String(e?.name));
  const text = ours ? raw : withoutQuotes(raw);
  return redact(text, { max: options.max ?? 300 });
}

/** Text with every quoted part ("…", '…', `…`, “…”) replaced by an ellipsis in the same quotes. */
export function withoutQuotes(text: string): string {
  // A single quote opens a quotation only after a non-letter (`can't` is a word, not a quote).
  return text.replace(/"(?:[^"\\]|\\.)*"?|(?<!\w)'[^'\n]*'?|`[^`\n]*`?|“[^”]*”?/g, (q) => `${q[0]}…${q[0] === '“' ? '”' : q[0]}`);
}

/** A value-free description of a low-level error: its code (`ECONNREFUSED`), else its class. */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; cause?: unknown } | undefined;
  if (typeof e?.code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(e.code)) return e.code;
  const cause = e?.cause as { code?: unknown } | undefined;
  if (typeof cause?.code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(cause.code)) return cause.code;
  return typeof e?.name === 'string' ? e.name : 'unknown error';
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT']);

/** Every message in the chain of causes, for matching (never printed as is). */
function chainText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; cause?: unknown; code?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i += 1) {
    parts.push(`${String(e.message ?? '')} ${String(e.code ?? '')}`);
  }
  return parts.join(' | ');
}

function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i += 1) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  }
  const m = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ECONNRESET)\b/.exec(chainText(err));
  return m?.[1];
}

/** A Temporal connection or namespace failure at start, naming the variable to fix. */
export function temporalError(err: unknown, address: string, namespace: string): UserError {
  const text = chainText(err);
  if (/namespace[^|]*not found|NamespaceNotFound/i.test(text)) {
    return new UserError(`TEMPORAL_NAMESPACE: namespace "${namespace}" does not exist on the Temporal server at ${address}; create it or set TEMPORAL_NAMESPACE.`, 2, { cause: err });
  }
  return new UserError(
    `TEMPORAL_ADDRESS: cannot reach a Temporal server at ${address} (${networkCode(err) ?? 'no answer'}); start it (e.g. \`temporal server start-dev\`) or set TEMPORAL_ADDRESS.`,
    3,
    { cause: err },
  );
}

/** A database failure at start, naming DATABASE_URL or PGLITE_DATA_DIR (never the URL: it may hold a password). */
export function databaseError(err: unknown, config: { url?: string; dataDir: string; dataDirVariable?: string }): UserError {
  if (err instanceof UserError) return err;
  const code = (err as { code?: unknown })?.code;
  if (!config.url) {
    const variable = config.dataDirVariable ?? 'PGLITE_DATA_DIR';
    if ((err as Error)?.name === 'DatabaseInUseError') return new UserError(`${variable}: ${(err as Error).message}.`, 3, { cause: err });
    return new UserError(
      `${variable}: cannot open the embedded database in ${config.dataDir} (${errorCode((err as { cause?: unknown })?.cause ?? err)}); check that the directory is writable and not damaged, or point ${variable} at another one.`,
      3,
      { cause: err },
    );
  }
  let where: string;
  try {
    const u = new URL(config.url);
    where = `${u.hostname}:${u.port || 5432}`;
  } catch {
    return new UserError('DATABASE_URL: not a valid postgres:// URL.', 2, { cause: err });
  }
  if (code === '28P01' || code === '28000') return new UserError(`DATABASE_URL: the PostgreSQL server at ${where} refused the user name or password.`, 2, { cause: err });
  if (code === '3D000') return new UserError(`DATABASE_URL: the database named in it does not exist on the PostgreSQL server at ${where}; create it or fix the URL.`, 2, { cause: err });
  const net = networkCode(err);
  if (net || /timeout|terminated/i.test(chainText(err))) {
    return new UserError(`DATABASE_URL: cannot reach a PostgreSQL server at ${where} (${net ?? 'no answer'}); start it or fix DATABASE_URL.`, 3, { cause: err });
  }
  return new UserError(`DATABASE_URL: the PostgreSQL server at ${where} failed (${errorCode(err)}); rerun with LOG_LEVEL=debug for details.`, 3, { cause: err });
}

/**
 * A LiveKit API failure, naming the setting to fix: a wrong key or secret is blamed on
 * LIVEKIT_API_KEY / LIVEKIT_API_SECRET (never LIVEKIT_URL), and the server's text — which may echo
 * the signed token — is never printed.
 */
export function liveKitError(err: unknown, url: string, what = 'the LiveKit API'): UserError {
  const e = err as { status?: unknown; code?: unknown };
  const text = chainText(err);
  if (e?.status === 401 || e?.code === 'unauthenticated' || /unauthenticated|invalid token|signature|permission/i.test(text)) {
    return new UserError(`LIVEKIT_API_KEY / LIVEKIT_API_SECRET: the LiveKit server at ${url} refused them; check both are the server's API key and secret.`, 2, { cause: err });
  }
  const net = networkCode(err);
  if (net || /fetch failed/i.test(text)) {
    return new UserError(`LIVEKIT_URL: cannot reach a LiveKit server at ${url} (${net ?? 'no answer'}); start it or fix LIVEKIT_URL.`, 3, { cause: err });
  }
  return new UserError(`${what} at ${url} failed (${typeof e?.code === 'string' ? e.code : errorCode(err)}); rerun with LOG_LEVEL=debug for details.`, 3, { cause: err });
}

/**
 * The message an entry point prints for `err`: known errors' own message, else a generic sentence
 * (the detail only at debug level). Always scrubbed.
 */
export function describeForUser(err: unknown, options: { debug?: boolean; env?: Record<string, string | undefined>; secrets?: string[] } = {}): { message: string; exitCode: number } {
  const env = options.env ?? process.env;
  const known = err instanceof UserError || ['ConfigError', 'ValidationError', 'CommanderError'].includes((err as Error)?.name);
  const exitCode = err instanceof UserError ? err.exitCode : known ? 2 : 1;
  const message = known
    ? String((err as Error).message)
    : `unexpected failure (${errorCode(err)}); rerun with LOG_LEVEL=debug to see the details.`;
  // The stack at debug level is bounded more loosely, but redacted the same way.
  const shown = redact(message, { env, secrets: options.secrets });
  return { message: options.debug ? `${shown}\n${redact(debugDetail(err), { env, secrets: options.secrets, max: 8_000 })}` : shown, exitCode };
}

/**
 * The causes and their stack frames, for debug level. Each message goes through
 * {@link safeMessage} (a stack's first line repeats the message, quoted input and all: it is
 * rebuilt from the frames alone).
 */
function debugDetail(err: unknown): string {
  const lines: string[] = [];
  for (let e = err as { stack?: unknown; name?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i += 1) {
    const frames = typeof e.stack === 'string' ? e.stack.split('\n').filter((line) => /^\s+at /.test(line)) : [];
    lines.push(`${i ? 'caused by: ' : ''}${typeof e.name === 'string' ? e.name : 'Error'}: ${safeMessage(e)}`, ...frames);
  }
  return lines.join('\n');
}

/** True when the environment asks for debug output (`LOG_LEVEL=debug|trace`). */
export function debugRequested(env: Record<string, string | undefined> = process.env): boolean {
  return /^(debug|trace)$/i.test(env.LOG_LEVEL?.trim() ?? '');
}

/** Ends the process with one line on stderr naming what to fix (scrubbed), and a non-zero code. */
export function exitWithError(program: string, err: unknown, options: { secrets?: string[] } = {}): never {
  const { message, exitCode } = describeForUser(err, { debug: debugRequested(), secrets: options.secrets });
  process.stderr.write(`${program}: ${message}\n`);
  process.exit(exitCode);
}
