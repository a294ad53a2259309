package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"amber/internal/workpool"
)

// attemptFunc makes one attempt of a request against one daemon.
type attemptFunc func(ctx context.Context, ep *endpoint) error

// do runs attempt against the daemon in use until it succeeds, fails with
// an error retrying cannot fix (an *RPCError other than warming up, or
// anything attempt marks permanent), or ctx ends.
//
// Transport failures are retried after RetryDelay, doubling up to
// MaxRetryDelay; a failure at MaxRetryDelay switches to the next daemon
// (when there is one) and starts the backoff again there. A daemon that is
// warming up is waited for with the same backoff, without failing over:
// it is healthy, only busy. op names the request in errors.
func (c *Client) do(ctx context.Context, op string, attempt attemptFunc) error {
	defer workpool.Blocking(ctx)() // a request waiting here gives up its worker
	var (
		ep      *endpoint
		delay   time.Duration
		lastErr error
	)
	for {
		if cur := c.current(); cur != ep {
			ep, delay = cur, c.opts.RetryDelay
		}
		err := attempt(ctx, ep)
		if err == nil {
			c.recovered(ep)
			return nil
		}
		if ctx.Err() != nil {
			return stopped(ctx, op, lastErr)
		}
		var rpcErr *RPCError
		var perm *permanentError
		switch {
		case errors.As(err, &perm):
			return fmt.Errorf("%s: %w", op, perm.err)
		case errors.As(err, &rpcErr) && rpcErr.Code == CodeWarmingUp:
			lastErr = err
			if !ep.warming.Swap(true) {
				c.log.Info("daemon warming up", "daemon", ep.name, "status", rpcErr.Message)
			}
		case rpcErr != nil: // any other answer from the daemon
			return fmt.Errorf("%s: %w", op, err)
		default:
			lastErr = err
			if !ep.failing.Swap(true) {
				c.log.Warn("daemon request failed; retrying", "daemon", ep.name, "method", op, "err", err)
			} else {
				c.log.Debug("daemon request failed; retrying", "daemon", ep.name, "method", op, "err", err, "delay", delay)
			}
			if delay >= c.opts.MaxRetryDelay {
				c.failover(ep, err)
				if c.current() != ep {
					continue
				}
			}
		}
		if err := sleep(ctx, delay); err != nil {
			return stopped(ctx, op, lastErr)
		}
		delay = min(2*delay, c.opts.MaxRetryDelay)
	}
}

// recovered notes a successful attempt, logging the end of an outage or
// of a warm-up.
func (c *Client) recovered(ep *endpoint) {
	if ep.failing.Load() && ep.failing.Swap(false) {
		c.log.Info("daemon reachable", "daemon", ep.name)
	}
	if ep.warming.Load() && ep.warming.Swap(false) {
		c.log.Info("daemon warmed up", "daemon", ep.name)
	}
}

// stopped is the error of a request whose context ended: it wraps the
// context's error and mentions the last transport failure, if any.
func stopped(ctx context.Context, op string, lastErr error) error {
	if lastErr != nil {
		return fmt.Errorf("%s: %w (last error: %v)", op, context.Cause(ctx), lastErr)
	}
	return fmt.Errorf("%s: %w", op, context.Cause(ctx))
}

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// permanentError marks an attempt's error as one retrying cannot fix,
// such as a result of the wrong shape.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent wraps err so that do returns it without retrying.
func permanent(err error) error { return &permanentError{err: err} }
