package member

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/phalanx-defence/phalanx/decisions"
	"github.com/phalanx-defence/phalanx/ledger"
)

// Event stream limits.
const (
	// eventBuffer bounds the changes queued for one client. The decision
	// set drops the oldest when it is full and marks the next Resync; the
	// stream then ends (a slow client is dropped) and the client, on
	// reconnecting, reloads the lists instead of trusting a gappy feed.
	eventBuffer = 256
	// eventKeepalive is how often an idle stream carries a comment, so
	// proxies and the browser see the connection alive.
	eventKeepalive = 15 * time.Second
	// eventStateEvery is how often the stream checks the ledger state
	// (ceasefires, drills) that no decision change announces, and sends it
	// when it changed.
	eventStateEvery = 2 * time.Second
	// eventWriteTimeout bounds each write: a client that stops reading is
	// dropped instead of holding a goroutine and its buffer.
	eventWriteTimeout = 10 * time.Second
	// eventDrills bounds the drills a state event carries.
	eventDrills = 50
)

// DecisionEvent is an `event: decision` on GET /v1/events.
type DecisionEvent struct {
	Op string `json:"op"` // added, lifted, expired
	DecisionView
}

// DrillView is one drill in a StateEvent: when it entered the ledger and
// each member's time-to-protect.
type DrillView struct {
	ID      string          `json:"id"`
	At      time.Time       `json:"at"`
	Author  ledger.MemberID `json:"author"`
	Value   string          `json:"value"`
	Members []DrillMember   `json:"members"`
	MaxMS   float64         `json:"max_ms"`
}

// StateEvent is an `event: state` on GET /v1/events: sent when the stream
// opens and whenever it changes.
type StateEvent struct {
	Applied    uint64             `json:"applied"`
	Ceasefires []ledger.Ceasefire `json:"ceasefires"`
	Drills     []DrillView        `json:"drills"`
}

func opName(o decisions.Op) string {
	if o == decisions.Deleted {
		return "lifted"
	}
	return o.String()
}

// state is the StateEvent as of now.
func (m *Member) state() StateEvent {
	now := m.clock.Now()
	m.mu.Lock()
	s := StateEvent{Applied: m.fold.Applied(), Ceasefires: m.fold.Ceasefires(now)}
	drills := m.fold.Drills()
	m.mu.Unlock()
	if s.Ceasefires == nil {
		s.Ceasefires = []ledger.Ceasefire{}
	}
	s.Drills = []DrillView{}
	if len(drills) > eventDrills {
		drills = drills[len(drills)-eventDrills:]
	}
	for _, d := range drills {
		v := DrillView{ID: d.ID, At: d.At, Author: d.Author, Value: d.Value.String(), Members: []DrillMember{}}
		for _, a := range d.Acks {
			ms := float64(a.Latency.Microseconds()) / 1000
			v.Members = append(v.Members, DrillMember{ID: a.Member, MS: ms, OK: true})
			v.MaxMS = max(v.MaxMS, ms)
		}
		s.Drills = append(s.Drills, v)
	}
	return s
}

// getEvents streams decision changes and ledger state as server-sent
// events until the client goes away, is too slow, or the server stops.
func (m *Member) getEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are sized for short requests;
	// a stream lives longer. Reads are done (a GET has no body), and each
	// write gets its own deadline below.
	rc.SetReadDeadline(time.Time{})
	ch, unsub := m.ds.Subscribe(eventBuffer)
	defer unsub()

	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)

	write := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	event := func(name string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		return write(fmt.Appendf(nil, "event: %s\ndata: %s\n\n", name, b))
	}
	var last []byte
	sendState := func() bool {
		b, err := json.Marshal(m.state())
		if err != nil || bytes.Equal(b, last) {
			return err == nil
		}
		last = b
		return write(fmt.Appendf(nil, "event: state\ndata: %s\n\n", b))
	}
	if !write([]byte(": phalanx events\nretry: 2000\n\n")) || !sendState() {
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		// A client that did not ask for a stream (curl, a script reading
		// the whole body) gets a snapshot instead of a wait without end.
		return
	}
	keep := time.NewTicker(eventKeepalive)
	defer keep.Stop()
	poll := time.NewTicker(eventStateEvery)
	defer poll.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case c, ok := <-ch:
			if !ok {
				return
			}
			if c.Resync {
				// Changes were lost: say so and end, rather than feed the
				// client a view with holes in it.
				write([]byte("event: resync\ndata: {}\n\n"))
				return
			}
			if !event("decision", m.decisionEvent(c)) {
				return
			}
		case <-poll.C:
			if !sendState() {
				return
			}
		case <-keep.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		}
	}
}

func (m *Member) decisionEvent(c decisions.Change) DecisionEvent {
	d := c.Decision
	var reporters []ledger.MemberID
	if c.Op == decisions.Added {
		// A lookup, not a scan of every decision: this runs per change
		// per client, under the lock the fold applies with.
		m.mu.Lock()
		if fd, ok := m.fold.Lookup(d.Value.Addr(), m.clock.Now()); ok && fd.Value == d.Value {
			reporters = fd.Reporters
		}
		m.mu.Unlock()
	}
	return DecisionEvent{Op: opName(c.Op), DecisionView: DecisionView{
		Value: d.ValueString(), Scope: d.Scope(), Type: d.Type, Scenario: d.Scenario, Origin: d.Origin,
		Reporters: reporters, Duration: d.Duration.String(), FirstSeen: d.FirstSeen,
		LastSeen: d.LastSeen, Until: d.Until(), Events: d.Events, Evidence: d.Evidence,
	}}
}
