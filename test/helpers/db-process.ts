/**
 * Another process using an embedded database, for the one-owner tests: opens the store on the data
 * directory in argv[2] and answers one JSON line per command line on stdin:
 *   dnc <phone>          → {"ok":true}
 *   state <phone>        → {"state":"DO_NOT_CALL"}
 *   reserve <n> <phone>  → {"counts":[…]}  n reservations at once, on one number
 *   close                → {"closed":true}, then exits
 * Errors answer {"error": message}. Prints {"ready":pid} once open.
 */
import { createInterface } from 'node:readline';
import { createStore } from '../../src/store';

const store = await createStore({ dataDir: process.argv[2]!, processName: 'test-holder' });
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
say({ ready: process.pid });
let n = 0;
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, a, b] = line.trim().split(/\s+/);
  try {
    if (cmd === 'dnc') {
      await store.addDoNotCall(a!, 'holder', 'test');
      say({ ok: true });
    } else if (cmd === 'state') {
      say({ state: await store.consentState('p1', a!) });
    } else if (cmd === 'reserve') {
      const results = await Promise.all(
        Array.from({ length: Number(a) }, () =>
          store.reserveAttempt({
            workflowId: `holder-${process.pid}-${(n += 1)}`,
            attempt: 1,
            appointmentId: 'A-1',
            phone: b!,
            at: new Date(),
            localDate: '2026-11-30',
            maxCallsPerDay: 1_000,
            maxCallsPerWeek: 1_000,
          }),
        ),
      );
      say({ counts: results.map((r) => r.dayCount) });
    } else if (cmd === 'close') {
      await store.close();
      say({ closed: true });
      process.exit(0);
    }
  } catch (err) {
    say({ error: (err as Error).message });
  }
}
