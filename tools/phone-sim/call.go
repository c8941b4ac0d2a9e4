package main

// One call: the INVITE's fate chosen by the scenario, the leg in the room while it rings and after
// the answer, the phone's script (clips, key presses, hang-up), and the call-log line at the end.

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
)

// Cue is one thing the phone does after it answers.
type Cue struct {
	// Play a clip (a file of PHONE_SIM_AUDIO_DIR, without ".ogg").
	Play string `json:"play,omitempty"`
	// Press these keys (0-9, *, #), 200 ms apart, sent as SIP DTMF (livekit.SipDTMF data packets).
	Press string `json:"press,omitempty"`
	// Hang up.
	Hangup bool `json:"hangup,omitempty"`
	// What the delay counts from: "answer" (default); "agent-audio", the first voiced audio the
	// phone hears from the room (a person answers the agent's greeting); or "agent-quiet", the end
	// of the agent's turn, as a person waits for a question to end before answering it: the agent
	// has spoken since the phone last did something (its last clip ended, its last key) and has
	// been quiet for AfterMs since. The agent-quiet cues run one after another, each on the turn
	// after the one before: a spoken answer, then (the agent re-prompts) a key.
	After string `json:"after,omitempty"`
	// Delay after that moment, in ms (for agent-quiet: how long the agent has been quiet).
	AfterMs int `json:"afterMs,omitempty"`
	// agent-quiet only: the agent's turn holds at least this much voice, in ms — a question, not
	// a pause after its first words (a loaded host can leave one between the opening and the rest).
	MinVoiceMs int `json:"minVoiceMs,omitempty"`
}

// Event is a cue as it happened, for the call log.
type Event struct {
	At   string `json:"at"`
	What string `json:"what"` // play | press | hangup | transfer
	Arg  string `json:"arg,omitempty"`
	// How long a played clip lasts, in ms: it ends (the phone falls quiet) at At plus this.
	Ms int `json:"ms,omitempty"`
}

// CallLogLine is one INVITE as the phone network saw it, written when the call is over.
type CallLogLine struct {
	Time                   string  `json:"time"`
	Trunk                  string  `json:"trunk"`
	From                   string  `json:"from"`
	To                     string  `json:"to"`
	Room                   string  `json:"room"`
	RingingTimeoutSeconds  int     `json:"ringingTimeoutSeconds"`
	MaxCallDurationSeconds int     `json:"maxCallDurationSeconds"`
	Outcome                string  `json:"outcome"`
	Ended                  string  `json:"ended"`
	SipCallID              string  `json:"sipCallId,omitempty"`
	AnsweredAt             string  `json:"answeredAt,omitempty"`
	EndedAt                string  `json:"endedAt"`
	Events                 []Event `json:"events,omitempty"`
	Heard                  *Heard  `json:"heard,omitempty"`
}

// leg is the callee's side of a call in the LiveKit room, as livekit-sip keeps it.
type leg struct {
	sim       *simulator
	room      *lksdk.Room
	callID    string
	mouth     *mouth
	ear       *ear
	recording string
	line      CallLogLine
	mu        sync.Mutex
	done      chan string // why the call ended
	ended     bool
	audioUp   chan struct{} // closed when the phone's audio track is bound: the line carries sound
	upOnce    sync.Once
	// When the phone last did something (a clip's end, a key): the agent's turn starts after it.
	actedUntil time.Time
}

func (s *simulator) CreateSIPParticipant(ctx context.Context, req *rpc.InternalCreateSIPParticipantRequest) (*rpc.InternalCreateSIPParticipantResponse, error) {
	// livekit-sip's CPU guard refuses the request before anything else: no INVITE, no leg, no
	// call-log line (the phone network never saw it).
	if s.cpuExhausted() {
		return nil, errCPUExhausted()
	}
	sc, ok := s.scenarios[req.CallTo]
	if !ok {
		sc = Scenario{Number: req.CallTo, Behavior: "ring"}
	}
	s.mu.Lock()
	nth := s.calls[req.CallTo]
	s.calls[req.CallTo] = nth + 1
	s.mu.Unlock()
	if len(sc.Sequence) > 0 {
		sc.Behavior = sc.Sequence[min(nth, len(sc.Sequence)-1)]
	}
	if sc.Behavior == "cpu-exhausted" {
		return nil, errCPUExhausted()
	}
	dialedAt := time.Now()
	ringing := 30 * time.Second
	if req.RingingTimeout != nil && req.RingingTimeout.AsDuration() > 0 {
		ringing = req.RingingTimeout.AsDuration()
	}
	line := CallLogLine{
		Time: stamp(dialedAt), Trunk: req.SipTrunkId, From: req.Number, To: req.CallTo, Room: req.RoomName,
		RingingTimeoutSeconds: int(ringing.Seconds()), MaxCallDurationSeconds: int(req.MaxCallDuration.AsDuration().Seconds()), Outcome: sc.Behavior,
	}

	// As livekit-sip does, the leg joins the room before the INVITE goes out, for every call
	// (sip.callStatus "dialing"), turns "ringing" at the far end's 180, and "active" at the answer.
	l, err := s.join(req, line, !sc.NoMedia)
	if err != nil {
		line.Outcome, line.Ended = "error", err.Error()
		s.record(line)
		return nil, psrpc.NewError(psrpc.Internal, err)
	}
	// The 100 Trying / 180 Ringing exchange: the far end's 180 comes 300 ms after the INVITE by default.
	ringingAfter := 300 * time.Millisecond
	if sc.RingingAfterMs > 0 {
		ringingAfter = time.Duration(sc.RingingAfterMs) * time.Millisecond
	}
	// A far end that never sends a 1xx leaves the leg "dialing" until the ringing timeout.
	silentUntilTimeout := time.Since(dialedAt)+ringingAfter >= ringing
	if silentUntilTimeout {
		ringingAfter = ringing - time.Since(dialedAt)
	}
	if why := l.ring(ctx, ringingAfter); why != "" || silentUntilTimeout {
		if why == "" {
			why = "ringing timeout (no 1xx)"
		} else {
			why = "cancelled while dialing: " + why
		}
		go l.end(why, "no-answer", false)
		return nil, psrpc.NewErrorf(psrpc.Canceled, "sip request timed out")
	}
	l.setStatus("ringing")
	// A SIP failure: the error returns, and the leg leaves the room with its status still "ringing"
	// (livekit-sip never sets "hangup" on a call that was not answered; the leave may trail the error).
	if f, isFailure := failures[sc.Behavior]; isFailure {
		time.Sleep(100 * time.Millisecond)
		go l.end(fmt.Sprintf("%d %s", f.code, f.reason), "", false)
		return nil, sipFailure(f.code, f.reason)
	}
	answerAfter := time.Duration(sc.AnswerAfterMs)*time.Millisecond + 200*time.Millisecond
	if sc.Behavior == "ring" || time.Since(dialedAt)+answerAfter >= ringing {
		why := l.ring(ctx, ringing-time.Since(dialedAt))
		if why != "" {
			why = "cancelled while ringing: " + why
		} else {
			why = "ringing timeout"
		}
		go l.end(why, "no-answer", false)
		return nil, psrpc.NewErrorf(psrpc.Canceled, "sip request timed out")
	}
	if why := l.ring(ctx, answerAfter); why != "" {
		go l.end("cancelled while ringing: "+why, "no-answer", false)
		return nil, psrpc.NewErrorf(psrpc.Canceled, "sip request timed out")
	}
	if err := l.answer(); err != nil {
		l.end("error: "+err.Error(), "error", true)
		return nil, psrpc.NewError(psrpc.Internal, err)
	}
	go l.run(sc, req, dialedAt)
	return &rpc.InternalCreateSIPParticipantResponse{
		ParticipantId:       l.room.LocalParticipant.SID(),
		ParticipantIdentity: req.ParticipantIdentity,
		SipCallId:           l.callID,
	}, nil
}

// errCPUExhausted is livekit-sip's refusal when its host is busy; livekit-server turns it into
// HTTP 503 "unavailable" with the message "twirp error unknown: cpu exhausted".
func errCPUExhausted() error {
	return psrpc.NewErrorf(psrpc.Unavailable, "cpu exhausted")
}

// setStatus sets the leg's sip.callStatus.
func (l *leg) setStatus(status string) {
	l.room.LocalParticipant.SetAttributes(map[string]string{"sip.callStatus": status})
}

// join connects the callee's leg to the room as a SIP participant, as livekit-sip does: identity,
// name, metadata and attributes from the request, kind SIP, and the sip.* attributes.
func (s *simulator) join(req *rpc.InternalCreateSIPParticipantRequest, line CallLogLine, media bool) (*leg, error) {
	// livekit-server picks the call id and sends it with the request; livekit-sip uses it for the
	// leg's sip.callID, its logs and its response, so one id names the call everywhere.
	callID := req.SipCallId
	if callID == "" {
		callID = fmt.Sprintf("SCL_sim%d", time.Now().UnixNano())
	}
	l := &leg{sim: s, callID: callID, mouth: &mouth{}, ear: &ear{}, line: line, done: make(chan string, 1), audioUp: make(chan struct{})}
	l.line.SipCallID = l.callID
	if s.recordDir != "" {
		l.recording = filepath.Join(s.recordDir, fmt.Sprintf("%s-%s.ogg", req.RoomName, l.callID))
	}
	attrs := map[string]string{}
	for k, v := range req.ParticipantAttributes {
		attrs[k] = v
	}
	attrs["sip.callID"] = l.callID
	attrs["sip.callStatus"] = "dialing"
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
		return nil, err
	}
	cb := lksdk.NewRoomCallback()
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		if track.Kind() == webrtc.RTPCodecTypeAudio {
			go l.ear.listen(track, l.recording)
		}
	}
	// How the far side ended the call: the room deleted (the workflow hangs up), or this leg removed
	// (the agent hung up after its goodbye; livekit-sip sends BYE for both).
	cb.OnDisconnectedWithReason = func(reason lksdk.DisconnectionReason) {
		switch reason {
		case lksdk.ParticipantRemoved:
			l.finish("hung up by the agent")
		case lksdk.RoomClosed, lksdk.OtherReason:
			// server-sdk-go folds livekit's ROOM_DELETED into OtherReason.
			l.finish("room deleted")
		default:
			l.finish("disconnected: " + string(reason))
		}
	}
	room, err := lksdk.ConnectToRoomWithToken(s.wsURL, token, cb, lksdk.WithAutoSubscribe(true))
	if err != nil {
		return nil, err
	}
	l.room = room
	s.track(l)
	if err := l.publish(media); err != nil {
		room.Disconnect()
		s.untrack(l)
		return nil, err
	}
	// Transfers of this call reach the simulator on its call id, as they reach livekit-sip.
	if s.server != nil {
		if err := s.server.RegisterTransferSIPParticipantTopic(l.callID); err != nil {
			s.logf("%s: transfer topic: %v", l.callID, err)
		}
	}
	return l, nil
}

// ring waits d; it returns why it stopped early ("" when it did not).
func (l *leg) ring(ctx context.Context, d time.Duration) string {
	select {
	case <-time.After(d):
		return ""
	case <-ctx.Done():
		return "the caller gave up"
	case why := <-l.done:
		l.done <- why
		return why
	}
}

// answer picks up: the leg turns "active" (livekit-server echoes it before CreateSIPParticipant
// returns, so anyone who looks at the room after the answer sees it); from now on its audio track
// (published at the join) carries what the phone says.
func (l *leg) answer() error {
	// The phone is picked up now (its 200 OK): what it hears from here on is heard after the answer,
	// and the answer time is this moment, before the room learns of it — so "answer → first audio"
	// includes the status reaching the agent.
	l.mu.Lock()
	l.line.AnsweredAt = stamp(time.Now())
	l.mu.Unlock()
	l.ear.answer()
	l.room.LocalParticipant.SetAttributes(map[string]string{
		"sip.callStatus": "active",
		"sip.callIDFull": l.callID + "@phone-sim.invalid",
		"sip.callTag":    fmt.Sprintf("%x", time.Now().UnixNano()),
	})
	deadline := time.Now().Add(3 * time.Second)
	for l.room.LocalParticipant.Attributes()["sip.callStatus"] != "active" {
		if time.Now().After(deadline) {
			l.mu.Lock()
			l.line.AnsweredAt = "" // not answered after all: the call log says "error"
			l.mu.Unlock()
			return fmt.Errorf("livekit-server did not confirm sip.callStatus active")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	l.line.Outcome = "answered"
	l.mu.Unlock()
	return nil
}

// publish puts the leg's audio track in the room, as livekit-sip does when it joins, before the
// INVITE: the leg is then a publisher, which livekit-server announces to the room at once (it
// batches the joins of non-publishers), so a room client sees "dialing". Until the answer the
// phone's side is silence; a far end with media false never sends any RTP at all.
func (l *leg) publish(media bool) error {
	track, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
	if err != nil {
		return err
	}
	track.OnBind(func() {
		if media {
			if err := track.StartWrite(l.mouth, nil); err != nil {
				l.sim.logf("%s: audio: %v", l.callID, err)
			}
		}
		l.upOnce.Do(func() { close(l.audioUp) })
	})
	go func() {
		if _, err := l.room.LocalParticipant.PublishTrack(track, &lksdk.TrackPublicationOptions{Name: "phone", Source: livekit.TrackSource_MICROPHONE}); err != nil {
			l.sim.logf("%s: publish: %v", l.callID, err)
		}
	}()
	return nil
}

// run plays the script and keeps the call up until the room goes away, the phone hangs up, the
// longest call the request allows (counted from the dial, as livekit-sip counts it), or the media
// timeout of a far end that sends no audio.
func (l *leg) run(sc Scenario, req *rpc.InternalCreateSIPParticipantRequest, dialedAt time.Time) {
	limit := 24 * time.Hour
	if req.MaxCallDuration != nil && req.MaxCallDuration.AsDuration() > 0 {
		limit = time.Until(dialedAt.Add(req.MaxCallDuration.AsDuration()))
	}
	// Only a phone that sends nothing at all trips it: digital silence is still RTP.
	var mediaTimeout <-chan time.Time
	if sc.NoMedia {
		d := l.sim.mediaTimeout
		if sc.MediaTimeoutMs > 0 {
			d = time.Duration(sc.MediaTimeoutMs) * time.Millisecond
		}
		mediaTimeout = time.After(d)
	}
	var turns []Cue // the agent-quiet cues, in order
	for _, cue := range sc.script() {
		cue := cue
		if cue.After == "agent-quiet" {
			turns = append(turns, cue)
			continue
		}
		start := func() {
			time.AfterFunc(time.Duration(cue.AfterMs)*time.Millisecond, func() { l.perform(cue) })
		}
		if cue.After == "agent-audio" {
			// Voice is known as such a moment after it starts (minRun): the delay counts from its start.
			l.ear.whenHeard(func() {
				wait := time.Duration(cue.AfterMs)*time.Millisecond - time.Since(l.ear.firstVoicedAt())
				time.AfterFunc(max(0, wait), func() { l.perform(cue) })
			})
		} else {
			// "After the answer" counts from when the line carries sound (the phone's track is up,
			// a few hundred ms after the 200 OK here), so nothing scripted is lost to a late join.
			go func() {
				select {
				case <-l.audioUp:
				case <-time.After(5 * time.Second):
				}
				start()
			}()
		}
	}
	if len(turns) > 0 {
		go l.takeTurns(turns)
	}
	select {
	case why := <-l.done:
		l.end(why, "", true)
	case <-time.After(limit):
		l.end("max call duration", "", true)
	case <-mediaTimeout:
		// livekit-sip sends BYE and the leg leaves with its status still "active".
		l.end("media timeout", "", false)
	}
}

// takeTurns performs the agent-quiet cues one by one, each once the agent's turn is over: it has
// spoken since the phone's last act (at least MinVoiceMs of voice) and has been quiet for the cue's AfterMs.
func (l *leg) takeTurns(cues []Cue) {
	l.mu.Lock()
	l.actedUntil = time.Now()
	l.mu.Unlock()
	for _, cue := range cues {
		for {
			time.Sleep(frame)
			l.mu.Lock()
			ended, since := l.ended, l.actedUntil
			l.mu.Unlock()
			if ended {
				return
			}
			last := l.ear.lastVoicedAt()
			if last.After(since) && time.Since(last) >= time.Duration(cue.AfterMs)*time.Millisecond &&
				l.ear.voicedSince(since) >= time.Duration(cue.MinVoiceMs)*time.Millisecond {
				break
			}
		}
		l.perform(cue)
	}
}

func (l *leg) perform(cue Cue) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	switch {
	case cue.Play != "":
		clip := l.sim.clips[cue.Play]
		l.eventMs("play", cue.Play, int(clip.Duration()/time.Millisecond))
		until := l.mouth.say(clip)
		l.acted(until)
	case cue.Press != "":
		for i, d := range cue.Press {
			if i > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			l.event("press", string(d))
			dtmf := &livekit.SipDTMF{Code: dtmfCode(d), Digit: string(d)}
			if err := l.room.LocalParticipant.PublishDataPacket(dtmf, lksdk.WithDataPublishReliable(true)); err != nil {
				l.sim.logf("%s: DTMF %c: %v", l.callID, d, err)
			}
		}
		l.acted(time.Now())
	case cue.Hangup:
		l.event("hangup", "")
		l.finish("phone hung up")
	}
}

// dtmfCode is the RFC 4733 event code of a key.
func dtmfCode(d rune) uint32 {
	switch {
	case d >= '0' && d <= '9':
		return uint32(d - '0')
	case d == '*':
		return 10
	case d == '#':
		return 11
	}
	return uint32(d-'A') + 12
}

// acted notes that the phone did something lasting until t (agent-quiet cues wait for a reply after it).
func (l *leg) acted(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.After(l.actedUntil) {
		l.actedUntil = t
	}
}

func (l *leg) event(what, arg string) { l.eventMs(what, arg, 0) }

func (l *leg) eventMs(what, arg string, ms int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.line.Events = append(l.line.Events, Event{At: stamp(time.Now()), What: what, Arg: arg, Ms: ms})
}

// finish asks the call to end (first reason wins).
func (l *leg) finish(why string) {
	select {
	case l.done <- why:
	default:
	}
}

// end takes the leg out of the room (with callStatus "hangup" first when hangup is set: an answered
// call that ends by a BYE) and writes the call log line.
func (l *leg) end(why, outcome string, hangup bool) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	l.mu.Unlock()
	if l.room.ConnectionState() != lksdk.ConnectionStateDisconnected {
		if hangup {
			l.setStatus("hangup")
			time.Sleep(50 * time.Millisecond)
		}
		l.room.Disconnect()
	}
	l.sim.untrack(l)
	if l.sim.server != nil {
		l.sim.server.DeregisterTransferSIPParticipantTopic(l.callID)
	}
	l.mu.Lock()
	line := l.line
	l.mu.Unlock()
	if outcome != "" {
		line.Outcome = outcome
	}
	line.Ended = why
	line.EndedAt = stamp(time.Now())
	if line.AnsweredAt != "" {
		line.Heard = l.ear.summary(l.recording)
	}
	l.sim.record(line)
}
