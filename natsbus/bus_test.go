package natsbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/phalanx-defence/phalanx/natsbus"
	"github.com/phalanx-defence/phalanx/natsbus/natstest"
)

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func open(t testing.TB, cfg natsbus.Config, alliance string) *natsbus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, cfg, alliance, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func publish(t testing.TB, b *natsbus.Bus, id string) (uint64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	seq, dup, err := b.Publish(ctx, id, []byte("data "+id))
	if err != nil {
		t.Fatal(err)
	}
	return seq, dup
}

// follow runs Consume from seq in the background until the test ends,
// handing every message over a channel.
func follow(t testing.TB, b *natsbus.Bus, from uint64) <-chan natsbus.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan natsbus.Message, 1024)
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, from, func(m natsbus.Message) error {
			ch <- m
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
	return ch
}

// expect receives n messages and checks they are the sequences want.., in order.
func expect(t testing.TB, ch <-chan natsbus.Message, first uint64, n int) []natsbus.Message {
	t.Helper()
	var got []natsbus.Message
	deadline := time.After(30 * time.Second)
	for i := range n {
		select {
		case m := <-ch:
			want := first + uint64(i)
			if m.Seq != want {
				t.Fatalf("message %d: seq %d, want %d", i, m.Seq, want)
			}
			if m.Time.IsZero() {
				t.Fatalf("seq %d: no server timestamp", m.Seq)
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages from seq %d", len(got), n, first)
		}
	}
	return got
}

func expectNothingMore(t testing.TB, ch <-chan natsbus.Message) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected extra message seq %d", m.Seq)
	default:
	}
}

func TestRoundTrip(t *testing.T) {
	alliance := natstest.Alliance(t)
	cfg := natstest.Hub(t)
	cfg.NoListen = true
	b := open(t, cfg, alliance)
	if b.ClientURL() != "" {
		t.Errorf("in-process hub has client URL %q", b.ClientURL())
	}
	if !b.Connected() {
		t.Fatal("not connected")
	}
	for i := range 5 {
		seq, dup := publish(t, b, fmt.Sprintf("e%d", i))
		if seq != uint64(i+1) || dup {
			t.Fatalf("publish e%d: seq %d dup %v, want %d false", i, seq, dup, i+1)
		}
	}
	if seq, dup := publish(t, b, "e2"); seq != 3 || !dup {
		t.Fatalf("republish e2: seq %d dup %v, want 3 true", seq, dup)
	}
	last, err := b.LastSeq(t.Context())
	if err != nil || last != 5 {
		t.Fatalf("LastSeq = %d, %v; want 5", last, err)
	}

	// Consume ends with fn's error, after delivering in order.
	stop := errors.New("enough")
	var got []string
	err = b.Consume(t.Context(), 1, func(m natsbus.Message) error {
		got = append(got, string(m.Data))
		if m.Seq == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Consume = %v, want fn's error", err)
	}
	if want := []string{"data e0", "data e1", "data e2", "data e3", "data e4"}; !slices.Equal(got, want) {
		t.Fatalf("consumed %q, want %q", got, want)
	}

	// From a middle sequence, then following new ones.
	ch := follow(t, b, 3)
	expect(t, ch, 3, 3)
	publish(t, b, "e5")
	if m := expect(t, ch, 6, 1); string(m[0].Data) != "data e5" {
		t.Fatalf("seq 6 = %q", m[0].Data)
	}
	expectNothingMore(t, ch)

	// Consume returns nil when its context ends.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Consume(ctx, 1, func(natsbus.Message) error { return nil }); err != nil {
		t.Fatalf("Consume with ended context = %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg      natsbus.Config
		alliance string
		want     string
	}{
		"short alliance": {natsbus.Config{URLs: []string{"nats://127.0.0.1:1"}}, "abc", "shorter"},
		"upper hex":      {natsbus.Config{URLs: []string{"nats://127.0.0.1:1"}}, "ABCDEF0123456789", "lowercase"},
		"no urls":        {natsbus.Config{}, "abcdef0123456789", "set nats.urls"},
		"no store":       {natsbus.Config{Embedded: true, NoListen: true}, "abcdef0123456789", "store_dir"},
		"bad listen":     {natsbus.Config{Embedded: true, Listen: "localhost", StoreDir: t.TempDir()}, "abcdef0123456789", "host:port"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := natsbus.Open(t.Context(), tc.cfg, tc.alliance, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

func TestClientThroughHub(t *testing.T) {
	alliance := natstest.Alliance(t)
	hub := open(t, natstest.Hub(t), alliance)
	if !strings.HasPrefix(hub.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("hub client URL %q", hub.ClientURL())
	}
	client := open(t, natsbus.Config{URLs: []string{hub.ClientURL()}}, alliance)
	fromHub, fromClient := follow(t, hub, 1), follow(t, client, 1)
	publish(t, hub, "h1")
	publish(t, client, "c1")
	if seq, dup := publish(t, client, "h1"); seq != 1 || !dup {
		t.Fatalf("client republishing the hub's h1: seq %d dup %v", seq, dup)
	}
	for _, ch := range []<-chan natsbus.Message{fromHub, fromClient} {
		got := expect(t, ch, 1, 2)
		if string(got[0].Data) != "data h1" || string(got[1].Data) != "data c1" {
			t.Fatalf("got %q %q", got[0].Data, got[1].Data)
		}
		expectNothingMore(t, ch)
	}
}

func TestHubRestart(t *testing.T) {
	alliance := natstest.Alliance(t)
	cfg := natstest.Hub(t)
	hub, err := natsbus.Open(t.Context(), cfg, alliance, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	client := open(t, natsbus.Config{URLs: []string{hub.ClientURL()}}, alliance)
	ch := follow(t, client, 1)
	for i := range 3 {
		publish(t, hub, fmt.Sprintf("before%d", i))
	}
	expect(t, ch, 1, 3)

	cfg.Listen = natstest.Listen(t, hub.ClientURL())
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	// The client publishes while the hub is down: Publish waits it out.
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _, err := client.Publish(ctx, "during", []byte("data during"))
		published <- err
	}()
	hub = open(t, cfg, alliance)
	if last, err := hub.LastSeq(t.Context()); err != nil || last < 3 {
		t.Fatalf("after restart LastSeq = %d, %v; want the 3 earlier entries kept", last, err)
	}
	if err := <-published; err != nil {
		t.Fatalf("publish across the restart: %v", err)
	}
	publish(t, hub, "after")
	got := expect(t, ch, 4, 2)
	data := []string{string(got[0].Data), string(got[1].Data)}
	slices.Sort(data)
	if !slices.Equal(data, []string{"data after", "data during"}) {
		t.Fatalf("after restart got %q", data)
	}
	expectNothingMore(t, ch)
}

func TestClusterNodeLoss(t *testing.T) {
	urls, stop := natstest.Cluster(t, 3)
	alliance := natstest.Alliance(t)
	b := open(t, natsbus.Config{URLs: urls, Replicas: 3}, alliance)
	ch := follow(t, b, 1)
	for i := range 10 {
		publish(t, b, fmt.Sprintf("a%d", i))
	}
	expect(t, ch, 1, 10)

	// Stop the node leading the stream: the hardest loss.
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), natsbus.StreamName(alliance))
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream replicas: config %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	// A member that leaves Replicas unset joins without shrinking the stream.
	open(t, natsbus.Config{URLs: urls}, alliance)
	if s, err := js.Stream(t.Context(), natsbus.StreamName(alliance)); err != nil || s.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("after a member with default replicas joined: %v, %+v", err, s)
	}
	nc.Close()

	leader := info.Cluster.Leader
	i := int(leader[len(leader)-1] - '0')
	t.Logf("stopping stream leader %s (node %d)", leader, i)
	stop(i)

	for i := range 10 {
		publish(t, b, fmt.Sprintf("b%d", i))
	}
	got := expect(t, ch, 11, 10)
	if string(got[0].Data) != "data b0" || string(got[9].Data) != "data b9" {
		t.Fatalf("after node loss got %q .. %q", got[0].Data, got[9].Data)
	}
	expectNothingMore(t, ch)
	if last, err := b.LastSeq(t.Context()); err != nil || last != 20 {
		t.Fatalf("LastSeq = %d, %v; want 20", last, err)
	}
}

func TestOpenHubDown(t *testing.T) {
	// A port nobody listens on: Open keeps trying until its context ends,
	// then says what to check.
	cfg := natstest.Hub(t)
	hub := open(t, cfg, natstest.Alliance(t))
	url := hub.ClientURL()
	if err := hub.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := natsbus.Open(ctx, natsbus.Config{URLs: []string{url}}, natstest.Alliance(t), nil)
	if err == nil || !strings.Contains(err.Error(), "is the hub") {
		t.Fatalf("Open with the hub down = %v", err)
	}
}
