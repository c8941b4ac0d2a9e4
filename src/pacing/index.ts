/** The global channel / calls-per-second gate of a trunk (see ./broker.ts). */
export { ChannelBroker, DEFAULT_LEASE_TTL_MS, type BrokerOptions, type ChannelGate, type ChannelRequest } from './broker';
export { CALL_SLOT_LATENESS_MS, slotIntervalMs, takeCallSlot, tryTakeCallSlot, type CallSlot } from './call-slots';
export { campaignKey, pickGrants, type Candidate, type ShareState } from './fair-share';
export { grantTick, type TickInput, type TickResult, type WaiterRow } from './grant-tick';
export { takeExtraLeg, type ExtraLeg, type ExtraLegRequest } from './extra-leg';
export { channelHolder, extraLegHolder, holderOfRoom, practiceOfWorkflow } from './holder';
export { findLease, leaveQueue, liveLeaseCount, releaseLease, renewLeases, type Lease } from './leases';
export { DEFAULT_TRUNK_LIMITS, ensureTrunkLimits, getTrunkLimits, limitProblems, setTrunkLimits } from './limits';
export { AGENT_REPORT_TTL_MS, agentCapacity, removeAgentWorker, reportAgentWorker, setTrunkAgent, workerCapacity, type AgentCapacity, type AgentWorkerReport } from './agent-capacity';
