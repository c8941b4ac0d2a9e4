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
//	PHONE_SIM_CALL_LOG   file receiving one JSON line per INVITE
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Scenario is what the phone at Number does when called.
type Scenario struct {
	Number string `json:"number"`
	// answer | busy | unavailable | decline | notfound | server-error | ring
	Behavior string `json:"behavior"`
	// Behaviours of successive calls to this number (the last one repeats); overrides Behavior.
	Sequence []string `json:"sequence"`
	// Ringing before an answer, in ms.
	AnswerAfterMs int `json:"answerAfterMs"`
	// Hang up this long after answering, in ms (0: stay until the room is deleted).
	HangupAfterMs int `json:"hangupAfterMs"`
}

// CallLogLine is one INVITE as the phone network saw it.
type CallLogLine struct {
	Time                   string `json:"time"`
	Trunk                  string `json:"trunk"`
	From                   string `json:"from"`
	To                     string `json:"to"`
	Room                   string `json:"room"`
	RingingTimeoutSeconds  int    `json:"ringingTimeoutSeconds"`
	MaxCallDurationSeconds int    `json:"maxCallDurationSeconds"`
	Outcome                string `json:"outcome"`
	Ended                  string `json:"ended,omitempty"`
}

type simulator struct {
	wsURL, apiKey, apiSecret string
	scenarios                map[string]Scenario
	logMu                    sync.Mutex
	callLog                  *os.File
	calls                    map[string]int
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
	s.logMu.Lock()
	defer s.logMu.Unlock()
	b, _ := json.Marshal(line)
	_, _ = s.callLog.Write(append(b, '\n'))
}

func (s *simulator) CreateSIPParticipant(ctx context.Context, req *rpc.InternalCreateSIPParticipantRequest) (*rpc.InternalCreateSIPParticipantResponse, error) {
	sc, ok := s.scenarios[req.CallTo]
	if !ok {
		sc = Scenario{Number: req.CallTo, Behavior: "ring"}
	}
	s.logMu.Lock()
	nth := s.calls[req.CallTo]
	s.calls[req.CallTo] = nth + 1
	s.logMu.Unlock()
	if len(sc.Sequence) > 0 {
		sc.Behavior = sc.Sequence[min(nth, len(sc.Sequence)-1)]
	}
	ringing := 30 * time.Second
	if req.RingingTimeout != nil && req.RingingTimeout.AsDuration() > 0 {
		ringing = req.RingingTimeout.AsDuration()
	}
	line := CallLogLine{
		Time: time.Now().UTC().Format(time.RFC3339Nano), Trunk: req.SipTrunkId, From: req.Number, To: req.CallTo, Room: req.RoomName,
		RingingTimeoutSeconds: int(ringing.Seconds()), MaxCallDurationSeconds: int(req.MaxCallDuration.AsDuration().Seconds()), Outcome: sc.Behavior,
	}
	// A SIP failure comes back after the 100 Trying / 180 Ringing exchange, as from a real carrier.
	if f, isFailure := failures[sc.Behavior]; isFailure {
		time.Sleep(300 * time.Millisecond)
		line.Ended = fmt.Sprintf("%d %s", f.code, f.reason)
		s.record(line)
		return nil, sipFailure(f.code, f.reason)
	}
	answerAfter := time.Duration(sc.AnswerAfterMs) * time.Millisecond
	if sc.Behavior == "ring" || answerAfter >= ringing {
		select {
		case <-time.After(ringing):
		case <-ctx.Done():
		}
		line.Outcome, line.Ended = "no-answer", "ringing timeout"
		s.record(line)
		return nil, psrpc.NewErrorf(psrpc.Canceled, "sip request timed out")
	}
	select {
	case <-time.After(answerAfter + 200*time.Millisecond):
	case <-ctx.Done():
		line.Ended = "cancelled while ringing"
		s.record(line)
		return nil, psrpc.NewErrorf(psrpc.Canceled, "sip request timed out")
	}
	room, callID, err := s.join(req)
	if err != nil {
		line.Outcome, line.Ended = "error", err.Error()
		s.record(line)
		return nil, psrpc.NewError(psrpc.Internal, err)
	}
	line.Outcome = "answered"
	s.record(line)
	go s.stayOnLine(room, req, sc)
	return &rpc.InternalCreateSIPParticipantResponse{
		ParticipantId:       room.LocalParticipant.SID(),
		ParticipantIdentity: req.ParticipantIdentity,
		SipCallId:           callID,
	}, nil
}

// join connects the callee's leg to the room as a SIP participant, as livekit-sip does.
func (s *simulator) join(req *rpc.InternalCreateSIPParticipantRequest) (*lksdk.Room, string, error) {
	callID := fmt.Sprintf("SCL_sim%d", time.Now().UnixNano())
	attrs := map[string]string{}
	for k, v := range req.ParticipantAttributes {
		attrs[k] = v
	}
	attrs["sip.callID"] = callID
	attrs["sip.callStatus"] = "active"
	attrs["sip.phoneNumber"] = req.CallTo
	attrs["sip.trunkID"] = req.SipTrunkId
	attrs["sip.trunkPhoneNumber"] = req.Number
	token, err := auth.NewAccessToken(s.apiKey, s.apiSecret).
		SetVideoGrant(&auth.VideoGrant{RoomJoin: true, Room: req.RoomName, CanUpdateOwnMetadata: boolPtr(true)}).
		SetIdentity(req.ParticipantIdentity).
		SetName(req.ParticipantName).
		SetMetadata(req.ParticipantMetadata).
		SetAttributes(attrs).
		SetKind(livekit.ParticipantInfo_SIP).
		SetValidFor(time.Hour).
		ToJWT()
	if err != nil {
		return nil, "", err
	}
	room, err := lksdk.ConnectToRoomWithToken(s.wsURL, token, lksdk.NewRoomCallback(), lksdk.WithAutoSubscribe(false))
	return room, callID, err
}

// stayOnLine keeps the call up until the room goes away, the scenario hangs up, or the longest call.
func (s *simulator) stayOnLine(room *lksdk.Room, req *rpc.InternalCreateSIPParticipantRequest, sc Scenario) {
	limit := 24 * time.Hour
	if req.MaxCallDuration != nil && req.MaxCallDuration.AsDuration() > 0 {
		limit = req.MaxCallDuration.AsDuration()
	}
	if sc.HangupAfterMs > 0 && time.Duration(sc.HangupAfterMs)*time.Millisecond < limit {
		limit = time.Duration(sc.HangupAfterMs) * time.Millisecond
	}
	deadline := time.After(limit)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline:
			room.LocalParticipant.SetAttributes(map[string]string{"sip.callStatus": "hangup"})
			room.Disconnect()
			return
		case <-tick.C:
			if room.ConnectionState() == lksdk.ConnectionStateDisconnected {
				return
			}
		}
	}
}

func (s *simulator) TransferSIPParticipant(context.Context, *rpc.InternalTransferSIPParticipantRequest) (*emptypb.Empty, error) {
	return nil, psrpc.NewErrorf(psrpc.Unimplemented, "transfer is not simulated")
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
	byNumber := map[string]Scenario{}
	for _, sc := range scenarios {
		byNumber[sc.Number] = sc
	}
	callLog, err := os.OpenFile(env("PHONE_SIM_CALL_LOG"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatalf("phone-sim: PHONE_SIM_CALL_LOG: %v", err)
	}
	sim := &simulator{wsURL: env("PHONE_SIM_WS_URL"), apiKey: env("PHONE_SIM_API_KEY"), apiSecret: env("PHONE_SIM_API_SECRET"), scenarios: byNumber, callLog: callLog, calls: map[string]int{}}

	rc := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{env("PHONE_SIM_REDIS")}})
	if err := rc.Ping(context.Background()).Err(); err != nil {
		log.Fatalf("phone-sim: redis: %v", err)
	}
	server, err := rpc.NewSIPInternalServer(sim, psrpc.NewRedisMessageBus(rc))
	if err != nil {
		log.Fatalf("phone-sim: %v", err)
	}
	if err := server.RegisterCreateSIPParticipantTopic(""); err != nil {
		log.Fatalf("phone-sim: %v", err)
	}
	fmt.Println("phone-sim: ready")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Shutdown()
}
