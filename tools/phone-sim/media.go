package main

// The phone's audio: what it says into the call (a LiveKit track fed 20 ms Opus frames, silence
// between clips) and what it hears (the agent's track: arrival times, voiced duration, and an
// optional Ogg recording for a person to listen to).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

const frame = 20 * time.Millisecond

// opusSilence is one 20 ms Opus frame of digital silence (CELT, fullband, mono): what a phone leg
// carries between words, so the agent's voice-activity detector sees a live, quiet line.
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// voicedBytes: Opus frames this size or larger carry sound. Silence and comfort noise encode in a
// few bytes; 20 ms of speech at telephone bitrates takes tens of bytes.
const voicedBytes = 16

// minRun: sound counts as voice only in a run of frames this long (frames at most runGap apart).
// The agent's encoder (libwebrtc Opus, DTX) sends a burst of ~55-byte comfort-noise frames for
// ~200 ms when its track starts, and then one such frame every ~400 ms of silence: neither is the
// agent speaking, and neither lasts this long.
const (
	minRun = 250 * time.Millisecond
	runGap = 60 * time.Millisecond
)

// Clip is a recording the phone can play: Opus packets of 20 ms each.
type Clip struct {
	Name    string
	Packets [][]byte
}

// Duration of the clip.
func (c Clip) Duration() time.Duration { return time.Duration(len(c.Packets)) * frame }

// loadClips reads every <name>.ogg in dir (made by scripts/phone-audio.sh).
func loadClips(dir string) (map[string]Clip, error) {
	clips := map[string]Clip{}
	if dir == "" {
		return clips, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ogg"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		packets, err := oggOpusPackets(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".ogg")
		clips[name] = Clip{Name: name, Packets: packets}
	}
	return clips, nil
}

// oggOpusPackets splits an Ogg/Opus stream into its audio packets (RFC 7845), dropping the
// OpusHead and OpusTags headers. Ogg pages carry several packets, laced by the segment table; a
// 255-byte segment continues the packet into the next one (and the next page).
func oggOpusPackets(data []byte) ([][]byte, error) {
	var packets [][]byte
	var partial []byte
	r := bytes.NewReader(data)
	for {
		var header [27]byte
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("truncated Ogg page header: %w", err)
		}
		if string(header[:4]) != "OggS" {
			return nil, errors.New("not an Ogg stream (no OggS capture pattern)")
		}
		lacing := make([]byte, header[26])
		if _, err := io.ReadFull(r, lacing); err != nil {
			return nil, fmt.Errorf("truncated segment table: %w", err)
		}
		for _, size := range lacing {
			segment := make([]byte, size)
			if _, err := io.ReadFull(r, segment); err != nil {
				return nil, fmt.Errorf("truncated Ogg page: %w", err)
			}
			partial = append(partial, segment...)
			if size < 255 {
				packets = append(packets, partial)
				partial = nil
			}
		}
	}
	var audio [][]byte
	for _, p := range packets {
		if bytes.HasPrefix(p, []byte("OpusHead")) || bytes.HasPrefix(p, []byte("OpusTags")) {
			continue
		}
		audio = append(audio, p)
	}
	if len(audio) == 0 {
		return nil, errors.New("no Opus audio packets")
	}
	return audio, nil
}

// mouth is the phone's microphone: a sample provider paced by the SDK at one frame per 20 ms,
// playing queued clips and silence otherwise.
type mouth struct {
	lksdk.BaseSampleProvider
	mu      sync.Mutex
	queue   [][]byte
	playing bool
}

// say queues a clip after whatever is playing; it returns when the clip will have ended.
func (m *mouth) say(c Clip) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queue = append(m.queue, c.Packets...)
	return time.Now().Add(time.Duration(len(m.queue)) * frame)
}

func (m *mouth) NextSample(ctx context.Context) (media.Sample, error) {
	if err := ctx.Err(); err != nil {
		return media.Sample{}, io.EOF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		m.playing = false
		return media.Sample{Data: opusSilence, Duration: frame}, nil
	}
	p := m.queue[0]
	m.queue = m.queue[1:]
	m.playing = true
	return media.Sample{Data: p, Duration: frame}, nil
}

// CurrentAudioLevel is the RTP audio level (RFC 6464: 0 loudest, 127 silent) sent with each frame.
func (m *mouth) CurrentAudioLevel() uint8 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.playing {
		return 30
	}
	return 127
}

// ear is what the phone heard from the room: the agent's audio. Audio that reaches the leg before
// the answer is counted apart: nobody is on the line yet to hear it.
type ear struct {
	mu           sync.Mutex
	answered     bool
	packets      int
	voiced       int
	beforeAnswer int
	firstVoiced  time.Time
	lastVoiced   time.Time
	onFirst      []func()
	spurts       []spurt
	run          run
}

// run is the current run of sound-sized frames, counted as voice once it lasts minRun.
type run struct {
	start, last   time.Time
	before, after int       // frames before and after the answer
	firstAfter    time.Time // its first frame after the answer
	confirmed     bool
}

// spurt is a run of the agent's voiced audio as the phone heard it, ended by a gap of at least
// spurtGap: what was said when (an opening cut short, a voicemail message after the beep).
type spurt struct{ start, end time.Time }

// spurtGap: voiced frames this far apart belong to separate spurts (a pause between words or
// sentences, or the end of an utterance).
const spurtGap = 200 * time.Millisecond

// maxSpurts bounds the call log line (a minute of speech makes a few dozen).
const maxSpurts = 400

// answer marks the moment the phone was picked up.
func (e *ear) answer() {
	e.mu.Lock()
	e.answered = true
	e.mu.Unlock()
}

// whenHeard calls f once the first voiced frame arrives (at once if it has).
func (e *ear) whenHeard(f func()) {
	e.mu.Lock()
	if e.firstVoiced.IsZero() {
		e.onFirst = append(e.onFirst, f)
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	f()
}

// firstVoicedAt is when the first voiced audio after the answer arrived (zero before).
func (e *ear) firstVoicedAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.firstVoiced
}

// lastVoicedAt is when the last voiced audio after the answer arrived (zero before any).
func (e *ear) lastVoicedAt() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastVoiced
}

// voicedSince is how much of the agent's voice (its spurts) the phone heard after t.
func (e *ear) voicedSince(t time.Time) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var d time.Duration
	for _, sp := range e.spurts {
		if sp.end.After(t) {
			if sp.start.After(t) {
				d += sp.end.Sub(sp.start)
			} else {
				d += sp.end.Sub(t)
			}
		}
	}
	return d
}

// listen reads a subscribed audio track until it ends, optionally writing it to an Ogg file.
func (e *ear) listen(track *webrtc.TrackRemote, recording string) {
	var w *oggwriter.OggWriter
	if recording != "" {
		if ow, err := oggwriter.New(recording, 48000, 1); err == nil {
			w = ow
			defer func() { _ = w.Close() }()
		}
	}
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		e.heard(pkt)
		if w != nil {
			_ = w.WriteRTP(pkt)
		}
	}
}

func (e *ear) heard(pkt *rtp.Packet) {
	now := time.Now()
	e.mu.Lock()
	var fire []func()
	if e.answered {
		e.packets++
	}
	if len(pkt.Payload) >= voicedBytes {
		r := &e.run
		if now.Sub(r.last) > runGap {
			*r = run{start: now}
		}
		r.last = now
		if e.answered {
			r.after++
			if r.firstAfter.IsZero() {
				r.firstAfter = now
			}
		} else {
			r.before++
		}
		if !r.confirmed && now.Sub(r.start) >= minRun {
			// Voice: the whole run so far counts, from its first frame.
			r.confirmed = true
			// A few frames that ran into the answer (comfort noise just before the agent's first
			// words) are not speech to a ringing line; a run of voice before the answer is.
			if !e.answered || time.Duration(r.before)*frame >= minRun {
				e.beforeAnswer += r.before
			}
			if r.after > 0 {
				e.voiced += r.after
				fire = e.voice(r.firstAfter, now)
			}
		} else if r.confirmed {
			if e.answered {
				e.voiced++
				fire = e.voice(now, now)
			} else {
				e.beforeAnswer++
			}
		}
	}
	e.mu.Unlock()
	for _, f := range fire {
		f()
	}
}

// voice records voiced audio after the answer from start to end (the ear's lock held); it returns
// the callbacks waiting for the first voiced audio, when this is it.
func (e *ear) voice(start, end time.Time) []func() {
	if n := len(e.spurts); n > 0 && start.Sub(e.spurts[n-1].end) < spurtGap+frame {
		e.spurts[n-1].end = end
	} else if n < maxSpurts {
		e.spurts = append(e.spurts, spurt{start: start, end: end})
	}
	e.lastVoiced = end
	if !e.firstVoiced.IsZero() {
		return nil
	}
	e.firstVoiced = start
	fire := e.onFirst
	e.onFirst = nil
	return fire
}

// Heard is the call log's account of the agent's audio.
type Heard struct {
	// Audio packets received after the answer (20 ms each), voiced or not.
	Packets int `json:"packets"`
	// Voiced audio received after the answer, in ms.
	VoicedMs int `json:"voicedMs"`
	// Voiced audio that reached the leg before the answer (a ringing line), in ms: should be 0.
	VoicedBeforeAnswerMs int `json:"voicedBeforeAnswerMs"`
	// First and last voiced frame (RFC 3339, UTC); absent when the phone heard nothing.
	FirstVoicedAt string `json:"firstVoicedAt,omitempty"`
	LastVoicedAt  string `json:"lastVoicedAt,omitempty"`
	// Runs of voiced audio (gaps under 200 ms joined): [start, end] as RFC 3339 UTC, the end being
	// the arrival of the run's last voiced frame (which plays 20 ms longer).
	Spurts [][2]string `json:"spurts,omitempty"`
	// Ogg/Opus recording of what the phone heard, when PHONE_SIM_RECORD_DIR is set.
	Recording string `json:"recording,omitempty"`
}

func (e *ear) summary(recording string) *Heard {
	e.mu.Lock()
	defer e.mu.Unlock()
	ms := int(frame / time.Millisecond)
	h := &Heard{Packets: e.packets, VoicedMs: e.voiced * ms, VoicedBeforeAnswerMs: e.beforeAnswer * ms, Recording: recording}
	if !e.firstVoiced.IsZero() {
		h.FirstVoicedAt = stamp(e.firstVoiced)
		h.LastVoicedAt = stamp(e.lastVoiced)
	}
	for _, sp := range e.spurts {
		h.Spurts = append(h.Spurts, [2]string{stamp(sp.start), stamp(sp.end)})
	}
	return h
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
