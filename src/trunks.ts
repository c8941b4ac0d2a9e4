/**
 * Outbound SIP trunks on LiveKit: create, list, delete. Credentials come from the environment or a
 * file (never a command-line argument), are never printed (livekit-server returns the password in
 * plaintext, so listings mask it), and never enter workflow inputs, histories or logs.
 */
import { readFile } from 'node:fs/promises';
import { SIPTransport } from '@livekit/protocol';
import { SipClient } from 'livekit-server-sdk';
import { z } from 'zod';
import { isE164, ValidationError } from './validation';

/** What a listing shows of a trunk: the password never, the username masked. */
export interface TrunkView {
  id: string;
  name: string;
  address: string;
  numbers: string[];
  /** `cl***` — enough to tell trunks apart. */
  authUsername: string;
  /** `set` or `none`: never the password itself. */
  authPassword: 'set' | 'none';
}

/** A new outbound trunk. */
export interface NewTrunk {
  name: string;
  /** Carrier's SIP address (`sip.carrier.example` or `host:port`). */
  address: string;
  /** Caller-ID numbers, E.164. */
  numbers: string[];
  authUsername?: string;
  authPassword?: string;
}

const trunkSchema = z
  .object({
    name: z.string({ error: 'required' }).trim().min(1, 'required').max(100, 'at most 100 characters'),
    address: z.string({ error: 'required' }).trim().regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be a SIP host or host:port (no scheme)'),
    numbers: z.array(z.string().refine(isE164, 'not a valid phone number in E.164 form'), { error: 'required: caller-ID numbers' }).min(1, 'at least one caller-ID number'),
    authUsername: z.string().optional(),
    authPassword: z.string().optional(),
  })
  .strict();

const mask = (s: string) => (s ? `${s.slice(0, 2)}***` : '');

/**
 * Credentials for a trunk: `SIP_TRUNK_AUTH_USERNAME` / `SIP_TRUNK_AUTH_PASSWORD`, or a JSON file
 * `{ "authUsername": …, "authPassword": … }` (mode 600), never an argument.
 */
export async function trunkCredentials(env: Record<string, string | undefined>, file?: string): Promise<{ authUsername?: string; authPassword?: string }> {
  if (file) {
    const shape = 'must be JSON {"authUsername": …, "authPassword": …}';
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ValidationError([{ field: '--credentials-file', problem: `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})` }]);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // The parser's message quotes the file (a bare password would be printed): say only what is wrong.
      throw new ValidationError([{ field: '--credentials-file', problem: `is not JSON; it ${shape}` }]);
    }
    const parsed = z.object({ authUsername: z.string().optional(), authPassword: z.string().optional() }).strict().safeParse(json);
    if (!parsed.success) throw new ValidationError([{ field: '--credentials-file', problem: shape }]);
    return parsed.data;
  }
  return { authUsername: env.SIP_TRUNK_AUTH_USERNAME || undefined, authPassword: env.SIP_TRUNK_AUTH_PASSWORD || undefined };
}

/** Trunk administration against one LiveKit server. */
export class Trunks {
  private readonly sip: SipClient;

  constructor(config: { url: string; apiKey: string; apiSecret: string }) {
    this.sip = new SipClient(config.url.replace(/^ws/, 'http'), config.apiKey, config.apiSecret, { failover: false });
  }

  /** Creates an outbound trunk; returns its view (credentials masked). */
  async create(input: NewTrunk): Promise<TrunkView> {
    const parsed = trunkSchema.safeParse(input);
    if (!parsed.success) {
      throw new ValidationError(parsed.error.issues.map((i) => ({ field: i.path.join('.') || 'trunk', problem: i.message })));
    }
    const t = parsed.data;
    const info = await this.sip.createSipOutboundTrunk(t.name, t.address, t.numbers, {
      transport: SIPTransport.SIP_TRANSPORT_AUTO,
      authUsername: t.authUsername,
      authPassword: t.authPassword,
    });
    return view(info);
  }

  /** Lists outbound trunks with credentials masked. */
  async list(): Promise<TrunkView[]> {
    return (await this.sip.listSipOutboundTrunk()).map(view);
  }

  /**
   * Deletes an outbound trunk by id. livekit-server answers "ok" for an id it does not have, so the
   * id is looked up first: a typo is an error, not a silent success.
   */
  async delete(id: string): Promise<{ deleted: string }> {
    const found = await this.sip.listSipOutboundTrunk({ trunkIds: [id] });
    if (!found.some((t) => t?.sipTrunkId === id)) {
      throw new ValidationError([{ field: 'id', problem: `no outbound trunk with id ${id} (\`trunk list\` shows the ids)` }]);
    }
    await this.sip.deleteSipTrunk(id);
    return { deleted: id };
  }
}

function view(info: { sipTrunkId: string; name: string; address: string; numbers: string[]; authUsername: string; authPassword: string }): TrunkView {
  return {
    id: info.sipTrunkId,
    name: info.name,
    address: info.address,
    numbers: info.numbers,
    authUsername: mask(info.authUsername),
    authPassword: info.authPassword ? 'set' : 'none',
  };
}
