package natsbus_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/natsbus"
	"github.com/phalanx-defence/phalanx/natsbus/natstest"
)

// BenchmarkPublishConsume measures, on loopback through an embedded hub,
// the time from a member starting Publish to a following member's Consume
// callback seeing that entry.
func BenchmarkPublishConsume(b *testing.B) {
	alliance := natstest.Alliance(b)
	hub := open(b, natstest.Hub(b), alliance)
	pub := open(b, natsbus.Config{URLs: []string{hub.ClientURL()}}, alliance)
	sub := open(b, natsbus.Config{URLs: []string{hub.ClientURL()}}, alliance)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan time.Time, 1)
	go sub.Consume(ctx, 1, func(natsbus.Message) error {
		seen <- time.Now()
		return nil
	})
	data := make([]byte, 512) // about one signed envelope
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, _, err := pub.Publish(ctx, fmt.Sprintf("bench-%d", i), data); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-seen:
			lat = append(lat, at.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatalf("entry %d not consumed within 10 s", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
