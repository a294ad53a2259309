package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/go-zeromq/zmq4"
)

// WatchBlocks subscribes to a bitcoind ZMQ hashblock publisher
// (zmqpubhashblock, e.g. tcp://127.0.0.1:28332) and signals on the
// returned channel whenever a new block is announced, so followers react
// at once instead of at their next poll. Signals coalesce: the channel
// holds at most one. Connection failures are retried with backoff until
// ctx ends; polling stays the fallback, so a silent publisher only costs
// latency.
func WatchBlocks(ctx context.Context, endpoint string, logger *slog.Logger) <-chan struct{} {
	wake := make(chan struct{}, 1)
	go func() {
		delay := 250 * time.Millisecond
		for ctx.Err() == nil {
			err := watch(ctx, endpoint, wake)
			if ctx.Err() != nil {
				return
			}
			logger.Warn("zmq hashblock subscription failed; polling meanwhile", "endpoint", endpoint, "err", err, "retry_in", delay.String())
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 30*time.Second)
		}
	}()
	return wake
}

func watch(ctx context.Context, endpoint string, wake chan<- struct{}) error {
	sub := zmq4.NewSub(ctx)
	defer sub.Close()
	if err := sub.Dial(endpoint); err != nil {
		return err
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, "hashblock"); err != nil {
		return err
	}
	for {
		msg, err := sub.Recv()
		if err != nil {
			return err
		}
		if len(msg.Frames) > 0 && string(msg.Frames[0]) == "hashblock" {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}
