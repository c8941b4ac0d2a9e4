#!/usr/bin/env bash
# phone-audio.sh <dir>: renders the phone-network simulator's audio clips into <dir> as Ogg/Opus
# (48 kHz mono, 20 ms frames, what a phone leg carries into LiveKit), with espeak-ng and sox. Run
# by scripts/setup.sh into the tool cache, keyed by this file's hash: the clips are generated, not
# committed. Scenario files name a clip by its file name without ".ogg".
set -euo pipefail
out="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

speak() { # speak <clip> <text>: a person (espeak-ng's en-us voice) saying <text>
  espeak-ng -v en-us -s 160 -w "$tmp/spoken.wav" "$2"
  sox -q "$tmp/spoken.wav" -r 48000 -c 1 "$tmp/$1.wav"
}

# An answering machine: the household's greeting, a short pause, then a 1 kHz beep (0.6 s).
speak greeting "Hi, you have reached the Rivera family. We can't take your call right now. Please leave a message after the tone."
sox -q -n -r 48000 -c 1 "$tmp/gap.wav" trim 0 0.4
sox -q -n -r 48000 -c 1 "$tmp/beep.wav" synth 0.6 sine 1000 vol 0.5
sox -q "$tmp/greeting.wav" "$tmp/gap.wav" "$tmp/beep.wav" "$tmp/voicemail-greeting.wav"

# People answering.
speak hello "Hello?"
speak phrase-yes "Yes, I will be there."
speak phrase-cancel "I need to cancel that appointment."
speak phrase-stop "Please stop calling me."

# People answering the agent's question aloud, as src/dev/speech-clips.ts renders the speech tests'
# answers: a flite voice (slt, female; rms, male), band-limited to the telephone's 300–3400 Hz at
# 8 kHz with faint pink noise (the same every run: -R), then carried at 48 kHz.
answer() { # answer <clip> <voice> <text>
  flite -voice "$2" -t "$3" -o "$tmp/flite.wav"
  sox -q "$tmp/flite.wav" -r 8000 -c 1 "$tmp/line.wav" sinc 300-3400
  sox -R -q -n -r 8000 -c 1 "$tmp/noise.wav" synth "$(soxi -D "$tmp/line.wav")" pinknoise vol 0.01
  sox -q -m "$tmp/line.wav" "$tmp/noise.wav" -r 48000 -c 1 "$tmp/$1.wav"
}
answer answer-yes rms "Yes, I'll be there."
answer answer-yes-2 slt "Yeah, that works for me."
answer answer-cancel slt "I need to cancel that appointment."
answer answer-reschedule slt "I need to reschedule. Tuesday morning would be better."
answer answer-unclear rms "Um, let me think."

for wav in "$tmp"/voicemail-greeting.wav "$tmp"/hello.wav "$tmp"/phrase-*.wav "$tmp"/answer-*.wav; do
  name=$(basename "$wav" .wav)
  opusenc --quiet --framesize 20 --bitrate 32 "$wav" "$out/$name.ogg"
done
