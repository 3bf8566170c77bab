package natsbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Consume delivers every message from stream sequence from (1 = the
// beginning) in order, then follows new ones, until ctx ends (nil) or fn
// returns an error (returned). An ordered consumer recreates itself after
// the last delivered sequence when the server restarts, the client
// reconnects or a heartbeat goes missing, so fn sees no gaps and no repeats.
func (b *Bus) Consume(ctx context.Context, from uint64, fn func(Message) error) error {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.subject},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if from > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = from
	}
	var cons jetstream.Consumer
	err := retry(ctx, func(ctx context.Context) error {
		var err error
		cons, err = b.js.OrderedConsumer(ctx, b.stream, cfg)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("natsbus: consume %s: %w", b.stream, err)
	}
	// A short heartbeat notices a lost consumer (its server died) within
	// seconds rather than the default half-minute.
	it, err := cons.Messages(jetstream.PullExpiry(10*time.Second), jetstream.PullHeartbeat(2*time.Second))
	if err != nil {
		return fmt.Errorf("natsbus: consume %s: %w", b.stream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, nats.ErrTimeout) {
				continue // the iterator carries on; only ctx ends the wait
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return fmt.Errorf("natsbus: consume %s: connection closed: %w", b.stream, err)
			}
			return fmt.Errorf("natsbus: consume %s: %w", b.stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("natsbus: consume %s: %w", b.stream, err)
		}
		if err := fn(Message{Seq: md.Sequence.Stream, Time: md.Timestamp, Data: msg.Data()}); err != nil {
			return err
		}
	}
}
