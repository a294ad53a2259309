package daemon

import (
	"context"
	"errors"
	"fmt"
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
	return Watch(ctx, endpoint, "hashblock", logger, nil)
}

// Watch subscribes to topic ("hashblock", or "sequence" for mempool adds
// and removals) at a bitcoind ZMQ publisher and signals on wake (a new
// channel when nil) at every message, coalesced; it returns wake. Like
// WatchBlocks it reconnects with backoff, and a subscription that has
// been silent for a minute is redialled, since a publisher that restarts
// is not always noticed by the subscriber.
func Watch(ctx context.Context, endpoint, topic string, logger *slog.Logger, wake chan struct{}) chan struct{} {
	if wake == nil {
		wake = make(chan struct{}, 1)
	}
	go func() {
		delay := 250 * time.Millisecond
		for ctx.Err() == nil {
			got, err := watch(ctx, endpoint, topic, wake)
			if ctx.Err() != nil {
				return
			}
			if got {
				delay = 250 * time.Millisecond
			}
			if errors.Is(err, errSilent) {
				logger.Debug("zmq subscription silent; redialling", "topic", topic, "endpoint", endpoint)
				continue
			}
			logger.Warn("zmq subscription lost; polling meanwhile", "topic", topic, "endpoint", endpoint, "err", err, "retry_in", delay.String())
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

// zmqSilence is how long a subscription may stay silent before it is
// redialled.
var zmqSilence = time.Minute

// watch runs one subscription until it fails; got tells whether any
// message came.
func watch(ctx context.Context, endpoint, topic string, wake chan<- struct{}) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub := zmq4.NewSub(ctx)
	defer sub.Close()
	if err := sub.Dial(endpoint); err != nil {
		return false, err
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, topic); err != nil {
		return false, err
	}
	msgs := make(chan error, 1)
	for {
		go func() {
			msg, err := sub.Recv()
			if err == nil && (len(msg.Frames) == 0 || string(msg.Frames[0]) != topic) {
				err = errOtherTopic
			}
			msgs <- err
		}()
		select {
		case err := <-msgs:
			if errors.Is(err, errOtherTopic) {
				continue
			}
			if err != nil {
				return got, err
			}
			got = true
			select {
			case wake <- struct{}{}:
			default:
			}
		case <-time.After(zmqSilence):
			return got, fmt.Errorf("no %s message for %v: %w", topic, zmqSilence, errSilent)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

var (
	errOtherTopic = errors.New("zmq: message of another topic")
	errSilent     = errors.New("silent subscription")
)
