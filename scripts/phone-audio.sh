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

for wav in "$tmp"/voicemail-greeting.wav "$tmp"/hello.wav "$tmp"/phrase-*.wav; do
  name=$(basename "$wav" .wav)
  opusenc --quiet --framesize 20 --bitrate 32 "$wav" "$out/$name.ogg"
done
