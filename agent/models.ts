/**
 * The agent's speech-to-text, language and text-to-speech models: a LiveKit Inference model string
 * (`deepgram/nova-3`, `openai/gpt-4.1-mini`, …), or an OpenAI-compatible endpoint a practice runs
 * itself (Ollama, vLLM, its own gateway), served through the library's OpenAI plugin.
 *
 *   AGENT_LLM=openai-compatible:llama3.1  AGENT_LLM_BASE_URL=http://ollama:11434/v1  [AGENT_LLM_API_KEY=…]
 *
 * and the same with AGENT_STT_* and AGENT_TTS_* (AGENT_TTS_VOICE picks the endpoint's voice).
 */
import { z } from 'zod';
import * as openai from '@livekit/agents-plugin-openai';
import type { AgentConfig } from './config';
import { IntentLLM } from './intent-llm';
import { PocketSphinxSTT } from './offline-stt';

/** The prefix that marks a model served by an OpenAI-compatible endpoint. */
export const OPENAI_COMPATIBLE = 'openai-compatible:';

/** An OpenAI-compatible endpoint: where it is, which model, and its key (never logged). */
export interface OpenAICompatibleModel {
  kind: 'openai-compatible';
  /** The API's base URL, up to and including `/v1` (e.g. `http://ollama:11434/v1`). */
  baseURL: string;
  model: string;
  /** Sent as a bearer token; unset for servers without keys (Ollama, a local vLLM). */
  apiKey?: string;
  /** TTS only: the endpoint's voice name. */
  voice?: string;
}

/** One of the three models: a LiveKit Inference model string, or an OpenAI-compatible endpoint. */
export type ModelSpec = string | OpenAICompatibleModel;

const baseUrl = z
  .string()
  .trim()
  .pipe(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL (the API base, e.g. http://host:11434/v1)' }))
  // A key in the URL would be logged with it: keys go in the *_API_KEY variable.
  .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not carry credentials: put the key in the matching _API_KEY variable');

/**
 * Reads one model's settings (`AGENT_<KIND>`, `_BASE_URL`, `_API_KEY`, and for TTS `_VOICE`) and
 * returns it, or the problems, each naming its variable without quoting its value.
 */
export function parseModelSpec(
  kind: 'STT' | 'LLM' | 'TTS',
  env: Record<string, string | undefined>,
): { spec?: ModelSpec; problems: string[] } {
  const name = `AGENT_${kind}`;
  const value = env[name]?.trim() || undefined;
  const rawUrl = env[`${name}_BASE_URL`]?.trim() || undefined;
  const apiKey = env[`${name}_API_KEY`]?.trim() || undefined;
  const voice = kind === 'TTS' ? env.AGENT_TTS_VOICE?.trim() || undefined : undefined;
  const problems: string[] = [];
  if (!value || !value.startsWith(OPENAI_COMPATIBLE)) {
    // A base URL or key without the endpoint form would be silently ignored: say so instead.
    for (const extra of ['_BASE_URL', '_API_KEY', ...(kind === 'TTS' ? ['_VOICE'] : [])]) {
      if (env[`${name}${extra}`]?.trim()) problems.push(`${name}${extra}: only used with ${name}=${OPENAI_COMPATIBLE}<model>`);
    }
    return { spec: value, problems };
  }
  const model = value.slice(OPENAI_COMPATIBLE.length).trim();
  if (!model) problems.push(`${name}: name the model after "${OPENAI_COMPATIBLE}" (e.g. ${OPENAI_COMPATIBLE}llama3.1)`);
  let url: string | undefined;
  if (!rawUrl) problems.push(`${name}_BASE_URL: required with ${name}=${OPENAI_COMPATIBLE}<model> (the API base, e.g. http://host:11434/v1)`);
  else {
    const parsed = baseUrl.safeParse(rawUrl);
    if (parsed.success) url = parsed.data.replace(/\/+$/, '');
    else problems.push(`${name}_BASE_URL: ${parsed.error.issues[0]!.message}`);
  }
  if (problems.length > 0) return { problems };
  return { spec: { kind: 'openai-compatible', baseURL: url!, model, ...(apiKey ? { apiKey } : {}), ...(voice ? { voice } : {}) }, problems };
}

/** For logs: the model string, or the endpoint's model and origin — never its key or path. */
export function describeModel(spec: ModelSpec): string {
  return typeof spec === 'string' ? spec : `${spec.model} at ${new URL(spec.baseURL).origin} (OpenAI-compatible)`;
}

// The plugin requires a key, and without one falls back to $OPENAI_API_KEY, which would send a
// practice's OpenAI key to its own server: a placeholder goes instead to servers that need none.
const NO_KEY = 'no-key';

/** The session's language model: the LiveKit Inference string as is, or the OpenAI plugin's LLM. */
export function languageModel(spec: ModelSpec): string | openai.LLM {
  if (typeof spec === 'string') return spec;
  return new openai.LLM({ model: spec.model, baseURL: spec.baseURL, apiKey: spec.apiKey ?? NO_KEY });
}

/**
 * The session's speech recognition. Self-hosted: the plain transcription API
 * (`/audio/transcriptions`, which Whisper servers, vLLM and gateways offer; the realtime websocket
 * is OpenAI's own), turned into a stream by the session's voice-activity detection.
 */
export function speechToText(spec: ModelSpec): string | openai.STT {
  if (typeof spec === 'string') return spec;
  return new openai.STT({ model: spec.model, baseURL: spec.baseURL, apiKey: spec.apiKey ?? NO_KEY, useRealtime: false, language: 'en' });
}

/** The session's speech: the LiveKit Inference string as is, or the OpenAI plugin's TTS (`/audio/speech`). */
export function textToSpeech(spec: ModelSpec): string | openai.TTS {
  if (typeof spec === 'string') return spec;
  return new openai.TTS({
    model: spec.model,
    baseURL: spec.baseURL,
    apiKey: spec.apiKey ?? NO_KEY,
    // Self-hosted servers name their own voices; the plugin's type lists only OpenAI's.
    ...(spec.voice ? { voice: spec.voice as openai.TTSOptions['voice'] } : {}),
  });
}

/**
 * Offline mode's ears and understanding: PocketSphinx behind `stt.STT` and the intent matcher behind
 * `llm.LLM`, so the session, the tools and the replies are the cloud mode's. `restart` is what the
 * matcher says to an unclear answer that cut the agent off (the greeting again, so the patient still
 * hears who is calling and why). Undefined when spoken answers are off: the keypad alone.
 */
export function offlineModels(config: Pick<AgentConfig, 'offlineSpeech'>, restart?: string): { stt: PocketSphinxSTT; llm: IntentLLM } | undefined {
  if (!config.offlineSpeech) return undefined;
  return { stt: new PocketSphinxSTT({ bin: config.offlineSpeech.bin, modelDir: config.offlineSpeech.modelDir }), llm: new IntentLLM({ restart }) };
}
