/**
 * The agent on a self-hosted, OpenAI-compatible model: the configuration as a practice writes it
 * (AGENT_LLM=openai-compatible:<model>, AGENT_LLM_BASE_URL, AGENT_LLM_API_KEY) builds the library's
 * OpenAI plugin, which talks to a local model server started here (Node `http`, streaming chat
 * completions scripted to call the confirm tool, then to say the reply). The plugin's real HTTP and
 * streaming code runs end to end: the model asks to confirm → the tool reports the `outcome` Update
 * to a real confirmation workflow on the Temporal dev server → the workflow records CONFIRMED.
 */
import { initializeLogger, voice } from '@livekit/agents';
import * as openai from '@livekit/agents-plugin-openai';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/config';
import { ConfirmationAgent } from '../../agent/confirmation-agent';
import { describeModel, languageModel, speechToText, textToSpeech } from '../../agent/models';
import { temporalReporter } from '../../agent/reporter';
import { replyFor } from '../../agent/script';
import { ConfigError } from '../../src/config';
import { CallOutcome } from '../../src/contracts';
import { answeredCall, startAgentWorkflowSystem, type AgentWorkflowSystem } from '../helpers/agent-workflow';
import { TEST_ENCRYPTION_KEY } from '../helpers/workflow-harness';

const BASE = { LIVEKIT_URL: 'ws://127.0.0.1:7880', LIVEKIT_API_KEY: 'k', LIVEKIT_API_SECRET: 's', PAYLOAD_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY };
const MODEL = 'llama3.1:8b-instruct';
const KEY = 'sk-practice-gateway-0123456789';

interface ChatRequest {
  model: string;
  stream?: boolean;
  messages: { role: string; content?: unknown; tool_calls?: unknown[] }[];
  tools?: { type: string; function: { name: string } }[];
}

/**
 * A local OpenAI-compatible model server (as Ollama or vLLM serve `/v1/chat/completions`), its
 * answers scripted: to the patient's words it streams a call of `confirm_appointment`; once the
 * tool's result is in the conversation it streams the sentence the tool said to say.
 */
async function startModelServer() {
  const requests: { body: ChatRequest; authorization?: string; path?: string }[] = [];
  const audio: { path: string; authorization?: string; body: Buffer }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString('utf8');
      if (req.method === 'POST' && req.url === '/v1/audio/speech') {
        // 0.5 s of a 440 Hz tone, 24 kHz 16-bit mono: what `response_format: pcm` asks for.
        audio.push({ path: req.url, authorization: req.headers.authorization, body: Buffer.concat(parts) });
        const pcm = Buffer.alloc(24_000);
        for (let i = 0; i < 12_000; i += 1) pcm.writeInt16LE(Math.round(8_000 * Math.sin((2 * Math.PI * 440 * i) / 24_000)), i * 2);
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(pcm);
        return;
      }
      if (req.method === 'POST' && req.url === '/v1/audio/transcriptions') {
        audio.push({ path: req.url, authorization: req.headers.authorization, body: Buffer.concat(parts) });
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text: "Yes, I'll be there." }));
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      const body = JSON.parse(raw) as ChatRequest;
      requests.push({ body, authorization: req.headers.authorization, path: req.url });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const chunk = (delta: object, finish: string | null = null) =>
        res.write(`data: ${JSON.stringify({ id: `chatcmpl-${requests.length}`, object: 'chat.completion.chunk', created: 0, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
      const last = body.messages.at(-1)!;
      if (last.role === 'tool') {
        // Say what the tool said to say, in pieces, as a model streams it.
        const say = /Say exactly: "(.*)"/s.exec(String(last.content))?.[1] ?? 'Thank you.';
        chunk({ role: 'assistant', content: '' });
        for (const piece of say.match(/.{1,12}/gs) ?? []) chunk({ content: piece });
        chunk({}, 'stop');
      } else {
        chunk({ role: 'assistant', tool_calls: [{ index: 0, id: 'call_confirm_1', type: 'function', function: { name: 'confirm_appointment', arguments: '' } }] });
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{' } }] });
        chunk({ tool_calls: [{ index: 0, function: { arguments: '}' } }] });
        chunk({}, 'tool_calls');
      }
      res.write(`data: ${JSON.stringify({ id: 'usage', object: 'chat.completion.chunk', created: 0, model: body.model, choices: [], usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return { url, requests, audio, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('self-hosted model configuration', () => {
  it('openai-compatible:<model> with a base URL builds the OpenAI plugin; Inference strings stay as they are', () => {
    const config = loadAgentConfig({
      ...BASE,
      AGENT_STT: 'openai-compatible:Systran/faster-whisper-small',
      AGENT_STT_BASE_URL: 'http://whisper:8000/v1/',
      AGENT_LLM: `openai-compatible:${MODEL}`,
      AGENT_LLM_BASE_URL: 'http://ollama:11434/v1',
      AGENT_LLM_API_KEY: KEY,
      AGENT_TTS: 'cartesia/sonic-2', // a mix is allowed: each of the three on its own
    });
    expect(config.mode).toBe('cloud');
    expect(config.models).toEqual({
      stt: { kind: 'openai-compatible', model: 'Systran/faster-whisper-small', baseURL: 'http://whisper:8000/v1' },
      llm: { kind: 'openai-compatible', model: MODEL, baseURL: 'http://ollama:11434/v1', apiKey: KEY },
      tts: 'cartesia/sonic-2',
    });
    const llm = languageModel(config.models!.llm);
    expect(llm).toBeInstanceOf(openai.LLM);
    expect((llm as openai.LLM).model).toBe(MODEL);
    expect((llm as openai.LLM).provider).toBe('ollama:11434');
    expect(speechToText(config.models!.stt)).toBeInstanceOf(openai.STT);
    expect(textToSpeech(config.models!.tts)).toBe('cartesia/sonic-2');
    expect(textToSpeech({ kind: 'openai-compatible', model: 'kokoro', baseURL: 'http://tts:8880/v1', voice: 'af_bella' })).toBeInstanceOf(openai.TTS);
    // What the worker logs: model and origin, never the key.
    expect(describeModel(config.models!.llm)).toBe(`${MODEL} at http://ollama:11434 (OpenAI-compatible)`);
  });

  it('no key set: the plugin gets a placeholder, never $OPENAI_API_KEY (a practice key would go to its own server)', () => {
    const before = process.env.OPENAI_API_KEY;
    delete process.env.OPENAI_API_KEY; // the plugin would otherwise throw "OpenAI API key is required"
    try {
      expect(() => languageModel({ kind: 'openai-compatible', model: MODEL, baseURL: 'http://ollama:11434/v1' })).not.toThrow();
      expect(() => speechToText({ kind: 'openai-compatible', model: 'whisper', baseURL: 'http://w:8000/v1' })).not.toThrow();
    } finally {
      if (before !== undefined) process.env.OPENAI_API_KEY = before;
    }
  });

  it.each([
    ['a missing model', { AGENT_LLM: 'openai-compatible:', AGENT_LLM_BASE_URL: 'http://ollama:11434/v1' }, /AGENT_LLM: name the model/],
    ['a missing base URL', { AGENT_LLM: `openai-compatible:${MODEL}` }, /AGENT_LLM_BASE_URL: required with AGENT_LLM=openai-compatible/],
    ['a base URL that is not one', { AGENT_LLM: `openai-compatible:${MODEL}`, AGENT_LLM_BASE_URL: 'ollama-secret-host:11434' }, /AGENT_LLM_BASE_URL: must be an http/],
    ['credentials in the base URL', { AGENT_LLM: `openai-compatible:${MODEL}`, AGENT_LLM_BASE_URL: `http://user:${KEY}@ollama:11434/v1` }, /AGENT_LLM_BASE_URL: must not carry credentials/],
    ['a base URL without the endpoint form', { AGENT_LLM: 'openai/gpt-4.1-mini', AGENT_LLM_BASE_URL: 'http://ollama:11434/v1', AGENT_LLM_API_KEY: KEY }, /AGENT_LLM_BASE_URL: only used with AGENT_LLM=openai-compatible.*AGENT_LLM_API_KEY: only used/],
    ['a voice without a self-hosted TTS', { AGENT_TTS: 'cartesia/sonic-2', AGENT_TTS_VOICE: 'af_bella' }, /AGENT_TTS_VOICE: only used with AGENT_TTS=openai-compatible/],
  ])('%s is a clear error naming the variable, without echoing the value', (_what, env, message) => {
    let err: unknown;
    try {
      loadAgentConfig({ ...BASE, AGENT_STT: 'deepgram/nova-3', AGENT_TTS: 'cartesia/sonic-2', AGENT_LLM: 'openai/gpt-4.1-mini', ...env });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain(KEY);
    expect((err as Error).message).not.toContain('ollama-secret-host');
  });

  it('nothing set is still offline mode; a self-hosted LLM alone is half a setup', () => {
    expect(loadAgentConfig(BASE).mode).toBe('offline');
    expect(() => loadAgentConfig({ ...BASE, AGENT_LLM: `openai-compatible:${MODEL}`, AGENT_LLM_BASE_URL: 'http://ollama:11434/v1' })).toThrow(/AGENT_STT, AGENT_LLM, AGENT_TTS: set all three/);
  });
});

describe('the agent on self-hosted models (OpenAI plugin → local model server), the LLM against a real workflow', () => {
  const QUEUE = 'agent-self-hosted';
  let system: AgentWorkflowSystem;
  let models: Awaited<ReturnType<typeof startModelServer>>;

  beforeAll(async () => {
    initializeLogger({ pretty: false, level: 'warn' });
    models = await startModelServer();
    system = await startAgentWorkflowSystem(QUEUE);
  });

  afterAll(async () => {
    await system?.stop();
    await models?.close();
  });

  it('speech both ways through the same kind of server: the OpenAI plugin\'s TTS and STT', async () => {
    const config = loadAgentConfig({
      ...BASE,
      AGENT_STT: 'openai-compatible:Systran/faster-whisper-small',
      AGENT_STT_BASE_URL: models.url,
      AGENT_LLM: 'openai/gpt-4.1-mini',
      AGENT_TTS: 'openai-compatible:kokoro',
      AGENT_TTS_BASE_URL: models.url,
      AGENT_TTS_API_KEY: KEY,
      AGENT_TTS_VOICE: 'af_heart',
    });
    const tts = textToSpeech(config.models!.tts) as openai.TTS;
    const frames = [];
    for await (const a of tts.synthesize('Hello, this is Bright Smiles Dental calling.')) frames.push(a.frame);
    expect(frames.reduce((n, f) => n + f.samplesPerChannel, 0)).toBe(12_000);
    expect(frames.every((f) => f.sampleRate === 24_000 && f.channels === 1)).toBe(true);
    const speech = JSON.parse(models.audio[0]!.body.toString('utf8')) as Record<string, unknown>;
    expect(speech).toMatchObject({ model: 'kokoro', voice: 'af_heart', response_format: 'pcm', input: 'Hello, this is Bright Smiles Dental calling.' });
    expect(models.audio[0]!.authorization).toBe(`Bearer ${KEY}`);

    // The patient's answer, as audio, to the transcription endpoint (no key configured: a placeholder).
    const stt = speechToText(config.models!.stt) as openai.STT;
    const heard = await stt.recognize(frames);
    expect(heard.alternatives?.[0]?.text).toBe("Yes, I'll be there.");
    const upload = models.audio[1]!;
    expect(upload.path).toBe('/v1/audio/transcriptions');
    expect(upload.body.includes('RIFF')).toBe(true); // a WAV file in the multipart form
    expect(upload.body.toString('latin1')).toContain('Systran/faster-whisper-small');
    expect(upload.authorization).not.toContain(KEY);
  });

  it('the model calls confirm_appointment, the tool reports it, the workflow records CONFIRMED', async () => {
    // A fictional 555-01xx number, apart from the simulator's and the other agent tests'.
    const { workflowId, request, meta, hangUp } = await answeredCall(system, '+12125550181', `self-hosted-${Date.now().toString(36)}`);
    const { client, api, store } = system;

    // The session's LLM is built from the configuration exactly as agent/call.ts builds it.
    const config = loadAgentConfig({
      ...BASE,
      AGENT_STT: 'deepgram/nova-3',
      AGENT_TTS: 'cartesia/sonic-2',
      AGENT_LLM: `openai-compatible:${MODEL}`,
      AGENT_LLM_BASE_URL: models.url,
      AGENT_LLM_API_KEY: KEY,
    });
    const agent = new ConfirmationAgent({ meta, reporter: temporalReporter({ client, workflowId: meta.workflowId, taskQueue: QUEUE }) });
    const session = new voice.AgentSession({ llm: languageModel(config.models!.llm) });
    await session.start({ agent });
    const result = await session.run({ userInput: "Yes, I'll be there." }).wait();
    result.expect.nextEvent().isFunctionCall({ name: 'confirm_appointment' });
    expect(result.expect.nextEvent().isFunctionCallOutput().event().item.output).toMatch(/recorded CONFIRMED/);
    result.expect.nextEvent().isMessage({ role: 'assistant' });
    result.expect.noMoreEvents();
    expect(agent.settled).toMatchObject({ outcome: CallOutcome.CONFIRMED, accepted: true, reply: replyFor(CallOutcome.CONFIRMED, meta) });
    await session.close();
    hangUp(); // after the goodbye, as the agent does

    expect((await api.result(workflowId)).outcome).toBe(CallOutcome.CONFIRMED);
    expect(await store.getAppointment(request.practiceId, request.appointmentId)).toMatchObject({ status: 'DONE', outcome: CallOutcome.CONFIRMED });

    // The model server saw what a self-hosted model needs: the model, the key, the tools, the tool's result.
    expect(models.requests).toHaveLength(2);
    for (const { body, authorization } of models.requests) {
      expect(body).toMatchObject({ model: MODEL, stream: true });
      expect(authorization).toBe(`Bearer ${KEY}`);
      expect(body.tools?.map((t) => t.function.name)).toContain('confirm_appointment');
    }
    expect(models.requests[1]!.body.messages.at(-1)).toMatchObject({ role: 'tool' });
    expect(String(models.requests[1]!.body.messages.at(-1)!.content)).toMatch(/recorded CONFIRMED/);
  });
});
