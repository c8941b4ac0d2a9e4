/**
 * Agents that keep up with the dialing, on the whole local system (dev server, worker, livekit-server,
 * the phone-network simulator and a real offline agent worker that reports its capacity): the agent
 * is dispatched at the answer only — a busy or rung-out call costs no agent job, an answered one
 * exactly one — and with the agent's capacity (1 call) below the trunk's channels (3), no more calls
 * are ever up at once than the agent can serve.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallOutcome } from '../../src/contracts';
import { maxConcurrentCalls, readCallLog } from '../../src/dev/livekit-stack';
import { startLocalSystem, type LocalSystem } from '../../src/dev/local-system';
import { simulatedPatientZone } from '../../src/dev/office-hours';
import { agentCapacity } from '../../src/pacing';
import { DEFAULT_CALLING_RULES } from '../../src/rules/calling-window';
import { e2eRequest } from '../helpers/fixtures';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

let system: LocalSystem;
let dataDir: string;
const agentLines: string[] = [];
const jobRequests = () => agentLines.filter((l) => l.includes('received job request')).length;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'agent-capacity-'));
  system = await startLocalSystem({
    payloadEncryptionKey: TEST_ENCRYPTION_KEY,
    taskQueue: 'agent-capacity',
    rules: { ...DEFAULT_CALLING_RULES, days: [1, 2, 3, 4, 5, 6, 7], maxCallsPerDay: 10, maxCallsPerWeek: 10 },
    dataDir: join(dataDir, 'pglite'),
    agentCapacity: true,
    // One call at a time: the agent's capacity (1) is below the trunk's channels (3).
    agentEnv: { AGENT_MAX_CALLS: '1' },
    agentProcesses: 1,
    trunkLimits: { channels: 3, callsPerSecond: 5 },
    agentEcho: (line) => agentLines.push(line),
  });
});

afterAll(async () => {
  await system?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

let n = 0;
async function confirm(phone: string): Promise<string> {
  n += 1;
  const request = e2eRequest(`cap-${n}`, phone, { ringingTimeoutSeconds: 15 });
  await system.api.recordConsent({ practiceId: request.practiceId, phone, granted: true, source: 'agent-capacity test' });
  await system.api.recordTimeZoneOverride(simulatedPatientZone(request.practiceId, phone, request.patientTimeZone));
  return (await system.api.startConfirmation(request)).workflowId;
}

/** Most calls up at once, from the simulator's log (INVITE → end). */
function maxConcurrent(rooms: string[]): number {
  return maxConcurrentCalls(readCallLog(system.stack!.callLogFile!).filter((l) => rooms.some((r) => l.room.startsWith(r))));
}

describe('agent capacity and dispatch at the answer', () => {
  it('the agent worker reports its capacity to the database', async () => {
    const cap = await agentCapacity(system.store.sql, 'appointment-confirmer');
    expect(cap).toMatchObject({ workers: 1, capacity: 1 });
  });

  it('a busy and a rung-out call dispatch no agent job; the answered call gets exactly one', async () => {
    const before = jobRequests();
    const busy = await confirm('+12125550102');
    const rungOut = await confirm('+12125550107');
    const answered = await confirm('+12125550113'); // presses 1 once the greeting starts
    expect((await system.api.result(busy)).outcome).toBe(CallOutcome.BUSY);
    expect((await system.api.result(rungOut)).outcome).toBe(CallOutcome.NO_ANSWER);
    expect((await system.api.result(answered)).outcome).toBe(CallOutcome.CONFIRMED);
    expect(jobRequests() - before).toBe(1);
    expect(agentLines.filter((l) => l.includes('job started') && l.includes(answered))).toHaveLength(1);
    // The agent's capacity is 1, so the three calls went one at a time although the trunk has 3 channels.
    expect(maxConcurrent([busy, rungOut, answered])).toBe(1);
  });

  it('with the agent capacity (1) below the trunk channels (3), answered calls never overlap, and each is served', async () => {
    const before = jobRequests();
    const ids = await Promise.all([confirm('+12125550113'), confirm('+12125550113'), confirm('+12125550113')]);
    for (const id of ids) expect((await system.api.result(id)).outcome).toBe(CallOutcome.CONFIRMED);
    expect(maxConcurrent(ids)).toBe(1);
    expect(jobRequests() - before).toBe(3);
  });
});
