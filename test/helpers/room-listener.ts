/**
 * A participant that sits in a call's room on the agent's side, with @livekit/rtc-node (the SDK the
 * agent uses): it records what the phone's leg does there — sip.callStatus changes, DTMF, the
 * audio it sends (level and pitch per 10 ms frame) — and can speak a tone to the phone.
 */
import { AudioFrame, AudioSource, AudioStream, LocalAudioTrack, Room, RoomEvent, TrackKind, TrackPublishOptions, TrackSource, type RemoteTrack } from '@livekit/rtc-node';
import { AccessToken } from 'livekit-server-sdk';
import type { LiveKitStack } from '../../src/dev/livekit-stack';

export interface HeardFrame {
  /** ms since the listener joined */
  t: number;
  /** RMS level, 0..1 */
  rms: number;
  /** zero crossings per second: about twice the frequency of a pure tone */
  crossingsPerSecond: number;
}

export interface RoomListener {
  room: Room;
  /** sip.callStatus values of the callee, as seen, with ms since the listener joined */
  statuses: { status: string; t: number }[];
  dtmf: { digit: string; code: number; t: number }[];
  frames: HeardFrame[];
  /** ms since join when the callee left, if it did */
  calleeLeftAt?: number;
  /** Sends a 440 Hz tone to the room for `ms`. */
  speak(ms: number): Promise<void>;
  close(): Promise<void>;
}

const RATE = 48_000;

export async function listenInRoom(stack: LiveKitStack, roomName: string, identity = 'listener'): Promise<RoomListener> {
  const token = new AccessToken(stack.apiKey, stack.apiSecret, { identity });
  token.addGrant({ roomJoin: true, room: roomName, canPublish: true, canSubscribe: true, canPublishData: true });
  const room = new Room();
  const t0 = Date.now();
  const since = () => Date.now() - t0;
  const listener: RoomListener = {
    room,
    statuses: [],
    dtmf: [],
    frames: [],
    async speak(ms: number) {
      const source = new AudioSource(RATE, 1);
      const track = LocalAudioTrack.createAudioTrack('agent-voice', source);
      const options = new TrackPublishOptions();
      options.source = TrackSource.SOURCE_MICROPHONE;
      await room.localParticipant!.publishTrack(track, options);
      const samples = RATE / 100;
      for (let i = 0; i < ms / 10; i += 1) {
        const data = new Int16Array(samples);
        for (let j = 0; j < samples; j += 1) data[j] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (i * samples + j)) / RATE));
        await source.captureFrame(new AudioFrame(data, RATE, 1, samples));
      }
      await source.waitForPlayout();
    },
    async close() {
      await room.disconnect();
    },
  };
  const status = (attrs: Record<string, string>) => {
    const s = attrs['sip.callStatus'];
    if (s && listener.statuses.at(-1)?.status !== s) listener.statuses.push({ status: s, t: since() });
  };
  room.on(RoomEvent.ParticipantConnected, (p) => status(p.attributes));
  room.on(RoomEvent.ParticipantAttributesChanged, (_changed, p) => status(p.attributes));
  room.on(RoomEvent.ParticipantDisconnected, () => (listener.calleeLeftAt = since()));
  room.on(RoomEvent.DtmfReceived, (code, digit) => listener.dtmf.push({ digit, code, t: since() }));
  room.on(RoomEvent.TrackSubscribed, (track: RemoteTrack) => {
    if (track.kind !== TrackKind.KIND_AUDIO) return;
    void (async () => {
      for await (const frame of new AudioStream(track, RATE, 1)) {
        let sum = 0;
        let crossings = 0;
        for (let i = 0; i < frame.data.length; i += 1) {
          sum += frame.data[i]! * frame.data[i]!;
          if (i > 0 && frame.data[i - 1]! < 0 !== frame.data[i]! < 0) crossings += 1;
        }
        const seconds = frame.samplesPerChannel / frame.sampleRate;
        listener.frames.push({ t: since(), rms: Math.sqrt(sum / frame.data.length) / 32768, crossingsPerSecond: crossings / seconds });
      }
    })();
  });
  await room.connect(stack.url, await token.toJwt(), { autoSubscribe: true, dynacast: false });
  for (const p of room.remoteParticipants.values()) status(p.attributes);
  return listener;
}
