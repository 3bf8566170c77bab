package file

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

// benchLines is the size of the log BenchmarkFollow reads per iteration.
const benchLines = 200_000

// BenchmarkFollow measures a Source reading a backlog of sshd lines from
// its start into a consumer, with the offsets saved in a state directory,
// and reports lines per second: the first stage of `phalanx up`.
func BenchmarkFollow(b *testing.B) { benchFollow(b, false) }

// BenchmarkFollowAck is BenchmarkFollow with a consumer that acknowledges
// every line the way `phalanx up` does (source.Acks, flushed when the
// channel is empty or every ackBatch lines).
func BenchmarkFollowAck(b *testing.B) { benchFollow(b, true) }

const ackBatch = 1024

func benchFollow(b *testing.B, ack bool) {
	dir := b.TempDir()
	path := filepath.Join(dir, "auth.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range benchLines {
		fmt.Fprintf(w, "Nov 27 10:00:00 web1 sshd[%d]: Failed password for root from 198.51.100.%d port %d ssh2\n", 1000+i%5000, i%250, 40000+i%20000)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		state := filepath.Join(dir, fmt.Sprintf("state-%d", i))
		src, err := New(Config{Paths: []string{path}, FromStart: true, Poll: time.Hour, Ack: ack}, state, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(b.Context())
		lines := make(chan source.Line, 4096)
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, lines) }()
		var acks source.Acks
		for n := range benchLines {
			l := <-lines
			acks.Add(l)
			if len(lines) == 0 || n%ackBatch == 0 {
				acks.Flush()
			}
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchLines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
