// phone-sim is call-campaigns' phone-network simulator. livekit-sip cannot be installed here, so
// this program takes its place behind the real livekit-server: it registers as the SIPInternal
// psrpc service on livekit-server's Redis, and plays scripted phones chosen by the dialed number.
// Everything from our code through livekit-server is the production path; only the carrier and
// the patient's phone are simulated.
//
// Configuration comes from the environment (never arguments, which show in process listings):
//
//	PHONE_SIM_REDIS      Redis address shared with livekit-server (127.0.0.1:port)
//	PHONE_SIM_WS_URL     livekit-server URL the SIP participant joins (ws://127.0.0.1:port)
//	PHONE_SIM_API_KEY    API key and secret of livekit-server, to mint the participant's token
//	PHONE_SIM_API_SECRET
//	PHONE_SIM_SCENARIOS  JSON file: [{"number": "+12125550101", "behavior": "busy", ...}]
//	PHONE_SIM_CALL_LOG   file receiving one JSON line per INVITE, written when the call is over
//	PHONE_SIM_AUDIO_DIR  (optional) Ogg/Opus clips the phones play, made by scripts/phone-audio.sh
//	PHONE_SIM_RECORD_DIR (optional) where each answered call's received audio is recorded (Ogg/Opus)
//	PHONE_SIM_MEDIA_TIMEOUT_MS (optional) how long an answered far end may send no audio at all
//	                     before the call is hung up; default 30000, livekit-sip's media timeout
//	PHONE_SIM_CPU_LOAD_FILE (optional) a file holding the host's CPU utilization (0..1), read at each
//	                     request; above PHONE_SIM_MAX_CPU_UTILIZATION (default 0.9, livekit-sip's
//	                     max_cpu_utilization) every CreateSIPParticipant is refused, as livekit-sip does
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Scenario is what the phone at Number does when called.
type Scenario struct {
	Number string `json:"number"`
	// What the phone does with the INVITE: answer | busy | unavailable | decline | notfound |
	// server-error | ring (until the ringing timeout) | voicemail (answers, plays a greeting and a beep).
	// cpu-exhausted is not the phone: livekit-sip's CPU guard refuses the request, no INVITE is sent.
	Behavior string `json:"behavior"`
	// Behaviours of successive calls to this number (the last one repeats); overrides Behavior.
	Sequence []string `json:"sequence,omitempty"`
	// When the far end's 180 Ringing comes, in ms after the INVITE (default 300); the leg is
	// "dialing" until then. At or past the ringing timeout: no 1xx ever, "dialing" to the end.
	RingingAfterMs int `json:"ringingAfterMs,omitempty"`
	// Ringing before an answer, in ms (200 ms more are always added: the 180 Ringing exchange).
	AnswerAfterMs int `json:"answerAfterMs,omitempty"`
	// Hang up this long after answering, in ms (0: stay until the room is deleted).
	HangupAfterMs int `json:"hangupAfterMs,omitempty"`
	// Answers but sends no audio at all (no RTP): livekit-sip's media timeout hangs it up.
	NoMedia bool `json:"noMedia,omitempty"`
	// That media timeout for this phone, in ms (default PHONE_SIM_MEDIA_TIMEOUT_MS, 30 000).
	MediaTimeoutMs int `json:"mediaTimeoutMs,omitempty"`
	// What the phone does once answered: clips it plays, keys it presses, when it hangs up.
	Script []Cue `json:"script,omitempty"`
	// A note for people reading the scenario file.
	Description string `json:"description,omitempty"`
}

// script is the scenario's cues, with the voicemail greeting and HangupAfterMs as cues.
func (sc Scenario) script() []Cue {
	cues := append([]Cue(nil), sc.Script...)
	if sc.Behavior == "voicemail" && len(sc.Script) == 0 {
		cues = append(cues, Cue{Play: "voicemail-greeting", AfterMs: 300})
	}
	if sc.HangupAfterMs > 0 {
		cues = append(cues, Cue{Hangup: true, AfterMs: sc.HangupAfterMs})
	}
	return cues
}

var behaviors = map[string]bool{"answer": true, "ring": true, "voicemail": true, "cpu-exhausted": true}

// validate names the first problem of a scenario, for the simulator's start-up error.
func (sc Scenario) validate(clips map[string]Clip) error {
	all := append([]string{sc.Behavior}, sc.Sequence...)
	if len(sc.Sequence) > 0 {
		all = sc.Sequence
	}
	for _, b := range all {
		if _, failure := failures[b]; !failure && !behaviors[b] {
			return fmt.Errorf("behavior %q is not one of answer, ring, voicemail, busy, unavailable, decline, notfound, server-error, cpu-exhausted", b)
		}
	}
	for i, cue := range sc.script() {
		n := 0
		for _, set := range []bool{cue.Play != "", cue.Press != "", cue.Hangup} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("script[%d]: a cue does one of play, press, hangup", i)
		}
		if cue.Play != "" {
			if _, ok := clips[cue.Play]; !ok {
				return fmt.Errorf("script[%d]: no clip %q in PHONE_SIM_AUDIO_DIR (run npm run setup)", i, cue.Play)
			}
		}
		for _, d := range cue.Press {
			if !strings.ContainsRune("0123456789*#ABCD", d) {
				return fmt.Errorf("script[%d]: %q is not a phone key", i, d)
			}
		}
		if cue.After != "" && cue.After != "answer" && cue.After != "agent-audio" && cue.After != "agent-quiet" {
			return fmt.Errorf("script[%d]: after %q is not answer, agent-audio or agent-quiet", i, cue.After)
		}
	}
	return nil
}

type simulator struct {
	wsURL, apiKey, apiSecret string
	server                   rpc.SIPInternalServer
	scenarios                map[string]Scenario
	clips                    map[string]Clip
	recordDir                string
	mu                       sync.Mutex
	callLog                  *os.File
	calls                    map[string]int
	live                     map[*leg]bool
	mediaTimeout             time.Duration
	cpuLoadFile              string
	maxCPU                   float64
}

// cpuExhausted tells whether livekit-sip's CPU guard would refuse a call now (PHONE_SIM_CPU_LOAD_FILE).
func (s *simulator) cpuExhausted() bool {
	if s.cpuLoadFile == "" {
		return false
	}
	data, err := os.ReadFile(s.cpuLoadFile)
	if err != nil {
		return false
	}
	load, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	return err == nil && load > s.maxCPU
}

// envMs reads an optional duration in ms from the environment.
func envMs(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms <= 0 {
		log.Fatalf("phone-sim: %s must be a positive whole number of milliseconds", name)
	}
	return time.Duration(ms) * time.Millisecond
}

// sipFailure mirrors livekit-sip: a psrpc error whose code follows the SIP status (as LiveKit maps
// it) and whose detail is the livekit.SIPStatus, from which livekit-server builds the twirp
// metadata sip_status_code / sip_status.
func sipFailure(code int, reason string) error {
	st := &livekit.SIPStatus{Code: livekit.SIPStatusCode(code), Status: reason}
	return psrpc.NewError(psrpc.ErrorCodeFromGRPC(st.GRPCStatus().Code()), fmt.Errorf("SIP call failed: %d %s", code, reason), st)
}

var failures = map[string]struct {
	code   int
	reason string
}{
	"busy":         {486, "Busy Here"},
	"unavailable":  {480, "Temporarily Unavailable"},
	"decline":      {603, "Decline"},
	"notfound":     {404, "Not Found"},
	"server-error": {503, "Service Unavailable"},
}

func (s *simulator) record(line CallLogLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(line)
	_, _ = s.callLog.Write(append(b, '\n'))
}

func (s *simulator) track(l *leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live[l] = true
}

func (s *simulator) untrack(l *leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, l)
}

func (s *simulator) logf(format string, args ...any) { log.Printf("phone-sim: "+format, args...) }

// TransferSIPParticipant plays the carrier accepting a REFER: the call leaves LiveKit for the
// transfer target (the practice's front desk), so the leg hangs up with "transferred to <target>".
func (s *simulator) TransferSIPParticipant(_ context.Context, req *rpc.InternalTransferSIPParticipantRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	var found *leg
	for l := range s.live {
		if l.callID == req.SipCallId {
			found = l
		}
	}
	s.mu.Unlock()
	if found == nil {
		return nil, psrpc.NewErrorf(psrpc.NotFound, "no call %s", req.SipCallId)
	}
	found.event("transfer", req.TransferTo)
	found.finish("transferred to " + req.TransferTo)
	return &emptypb.Empty{}, nil
}

func boolPtr(b bool) *bool { return &b }

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		log.Fatalf("phone-sim: %s is not set", name)
	}
	return v
}

func main() {
	log.SetFlags(0)
	var scenarios []Scenario
	data, err := os.ReadFile(env("PHONE_SIM_SCENARIOS"))
	if err != nil {
		log.Fatalf("phone-sim: PHONE_SIM_SCENARIOS: %v", err)
	}
	if err := json.Unmarshal(data, &scenarios); err != nil {
		log.Fatalf("phone-sim: PHONE_SIM_SCENARIOS: not a JSON list of scenarios: %v", err)
	}
	clips, err := loadClips(os.Getenv("PHONE_SIM_AUDIO_DIR"))
	if err != nil {
		log.Fatalf("phone-sim: PHONE_SIM_AUDIO_DIR: %v", err)
	}
	byNumber := map[string]Scenario{}
	for i, sc := range scenarios {
		if err := sc.validate(clips); err != nil {
			log.Fatalf("phone-sim: PHONE_SIM_SCENARIOS[%d] (%s): %v", i, sc.Number, err)
		}
		byNumber[sc.Number] = sc
	}
	callLog, err := os.OpenFile(env("PHONE_SIM_CALL_LOG"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatalf("phone-sim: PHONE_SIM_CALL_LOG: %v", err)
	}
	sim := &simulator{wsURL: env("PHONE_SIM_WS_URL"), apiKey: env("PHONE_SIM_API_KEY"), apiSecret: env("PHONE_SIM_API_SECRET"), scenarios: byNumber, clips: clips,
		recordDir: os.Getenv("PHONE_SIM_RECORD_DIR"), callLog: callLog, calls: map[string]int{}, live: map[*leg]bool{},
		mediaTimeout: envMs("PHONE_SIM_MEDIA_TIMEOUT_MS", 30*time.Second), cpuLoadFile: os.Getenv("PHONE_SIM_CPU_LOAD_FILE"), maxCPU: 0.9}
	if v := os.Getenv("PHONE_SIM_MAX_CPU_UTILIZATION"); v != "" {
		if sim.maxCPU, err = strconv.ParseFloat(v, 64); err != nil || sim.maxCPU <= 0 || sim.maxCPU > 1 {
			log.Fatalf("phone-sim: PHONE_SIM_MAX_CPU_UTILIZATION must be a number above 0 and at most 1")
		}
	}

	rc := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{env("PHONE_SIM_REDIS")}})
	if err := rc.Ping(context.Background()).Err(); err != nil {
		log.Fatalf("phone-sim: redis: %v", err)
	}
	server, err := rpc.NewSIPInternalServer(sim, psrpc.NewRedisMessageBus(rc))
	if err != nil {
		log.Fatalf("phone-sim: %v", err)
	}
	sim.server = server
	if err := server.RegisterCreateSIPParticipantTopic(""); err != nil {
		log.Fatalf("phone-sim: %v", err)
	}
	fmt.Println("phone-sim: ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Shutdown()
	// Calls still up end now, each with its call-log line.
	sim.mu.Lock()
	legs := make([]*leg, 0, len(sim.live))
	for l := range sim.live {
		legs = append(legs, l)
	}
	sim.mu.Unlock()
	for _, l := range legs {
		l.finish("simulator stopped")
		l.end("simulator stopped", "", l.line.AnsweredAt != "")
	}
}
