package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"amber/internal/config"
)

// errRefused stands for a transport failure in the retry tests.
var errRefused = errors.New("connection refused")

// script says how the attempts against each daemon (by index) go: the
// n-th attempt against daemon i returns script[i](n); past the end of the
// script, attempts fail in transport.
type script map[int]func(n int) error

// failFor returns a script entry that fails in transport n times and then
// succeeds.
func failFor(n int) func(int) error {
	return func(i int) error {
		if i < n {
			return errRefused
		}
		return nil
	}
}

// always returns a script entry that always gives err.
func always(err error) func(int) error { return func(int) error { return err } }

// retryClient returns a client over n unreachable URLs, for driving do
// with fake attempts, and its log.
func retryClient(t *testing.T, n int, opts Options) (*Client, *logBuffer) {
	t.Helper()
	log, buf := newLogger()
	opts.Logger = log
	urls := make([]config.DaemonURL, n)
	for i := range urls {
		urls[i] = config.DaemonURL{Scheme: "http", Host: "192.0.2.1", Port: 8000 + i, User: "u", Password: "secret"}
	}
	c, err := New(urls, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, buf
}

// run drives do with the script and returns the attempts per daemon
// index, the (synthetic) time it took, and do's error.
func run(ctx context.Context, c *Client, s script) (map[int]int, time.Duration, error) {
	var mu sync.Mutex
	attempts := map[int]int{}
	index := map[*endpoint]int{}
	for i, ep := range c.eps {
		index[ep] = i
	}
	start := time.Now()
	err := c.do(ctx, "getblockhash", func(ctx context.Context, ep *endpoint) error {
		mu.Lock()
		i := index[ep]
		n := attempts[i]
		attempts[i]++
		mu.Unlock()
		if f := s[i]; f != nil {
			return f(n)
		}
		return errRefused
	})
	return attempts, time.Since(start), err
}

// TestRetrySchedule checks the backoff, failover and warm-up rules with
// fake attempts in a synctest bubble, where time is exact.
func TestRetrySchedule(t *testing.T) {
	warm := &RPCError{Code: CodeWarmingUp, Message: "Loading block index…"}
	notFound := &RPCError{Code: CodeNotFound, Message: "Block not found"}
	cases := []struct {
		name      string
		urls      int
		opts      Options
		script    script
		wantErr   error // matched with errors.Is; nil means success
		attempts  map[int]int
		took      time.Duration
		failovers int
		warmups   int
		finalURL  int
	}{
		{
			name:     "success at once",
			urls:     2,
			script:   script{0: failFor(0)},
			attempts: map[int]int{0: 1},
		},
		{
			name:     "retries then succeeds",
			urls:     2,
			script:   script{0: failFor(3)},
			attempts: map[int]int{0: 4},
			took:     250*time.Millisecond + 500*time.Millisecond + time.Second,
		},
		{
			// 0.25 + 0.5 + 1 + 2 s, then the fifth failure happens at
			// the maximum delay of 4 s and the client switches.
			name:      "fails over after reaching the max",
			urls:      2,
			script:    script{1: failFor(0)},
			attempts:  map[int]int{0: 5, 1: 1},
			took:      3750 * time.Millisecond,
			failovers: 1,
			finalURL:  1,
		},
		{
			name:     "one url keeps retrying at the max",
			urls:     1,
			script:   script{0: failFor(7)},
			attempts: map[int]int{0: 8},
			took:     3750*time.Millisecond + 3*4*time.Second,
		},
		{
			name:      "round robin wraps around",
			urls:      3,
			script:    script{0: failFor(5)},
			attempts:  map[int]int{0: 6, 1: 5, 2: 5},
			took:      3 * 3750 * time.Millisecond,
			failovers: 3,
			finalURL:  0,
		},
		{
			name:      "custom delays",
			urls:      2,
			opts:      Options{RetryDelay: 100 * time.Millisecond, MaxRetryDelay: 300 * time.Millisecond},
			script:    script{1: failFor(0)},
			attempts:  map[int]int{0: 3, 1: 1},
			took:      300 * time.Millisecond, // 0.1 + 0.2, then 0.3 is the max
			failovers: 1,
			finalURL:  1,
		},
		{
			name:     "daemon error is not retried",
			urls:     2,
			script:   script{0: always(notFound)},
			wantErr:  ErrNotFound,
			attempts: map[int]int{0: 1},
		},
		{
			name:     "permanent error is not retried",
			urls:     2,
			script:   script{0: always(permanent(errRefused))},
			wantErr:  errRefused,
			attempts: map[int]int{0: 1},
		},
		{
			name: "warm-up is waited out without failover",
			urls: 2,
			script: script{0: func(n int) error {
				if n < 6 {
					return warm
				}
				return nil
			}},
			attempts: map[int]int{0: 7},
			took:     3750*time.Millisecond + 2*4*time.Second,
			warmups:  1,
		},
		{
			name: "warm-up after a transport failure",
			urls: 2,
			script: script{0: func(n int) error {
				switch n {
				case 0:
					return errRefused
				case 1, 2:
					return warm
				}
				return nil
			}},
			attempts: map[int]int{0: 4},
			took:     1750 * time.Millisecond,
			warmups:  1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, logs := retryClient(t, tc.urls, tc.opts)
				attempts, took, err := run(context.Background(), c, tc.script)
				switch {
				case tc.wantErr == nil && err != nil:
					t.Fatalf("do: %v", err)
				case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
					t.Fatalf("do: %v, want %v", err, tc.wantErr)
				}
				if fmt.Sprint(attempts) != fmt.Sprint(tc.attempts) {
					t.Errorf("attempts %v, want %v", attempts, tc.attempts)
				}
				if took != tc.took {
					t.Errorf("took %v, want %v", took, tc.took)
				}
				if n := logs.count("daemon failover"); n != tc.failovers {
					t.Errorf("%d failover log lines, want %d\n%s", n, tc.failovers, logs)
				}
				if n := logs.count("daemon warming up"); n != tc.warmups {
					t.Errorf("%d warm-up log lines, want %d\n%s", n, tc.warmups, logs)
				}
				if tc.warmups > 0 && logs.count("daemon warmed up") != 1 {
					t.Errorf("no warmed-up log line\n%s", logs)
				}
				if got, want := c.URL(), c.eps[tc.finalURL].name; got != want {
					t.Errorf("URL() = %s, want %s", got, want)
				}
				if strings.Contains(logs.String(), "secret") {
					t.Errorf("log shows the password\n%s", logs)
				}
			})
		})
	}
}

// TestRetryConcurrentFailover checks that many requests failing on the
// same daemon switch once, with one log line.
func TestRetryConcurrentFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, logs := retryClient(t, 3, Options{})
		var switched []string
		var mu sync.Mutex
		c.opts.Hooks.Failover = func(from, to string) {
			mu.Lock()
			switched = append(switched, from+" -> "+to)
			mu.Unlock()
		}
		var wg sync.WaitGroup
		errs := make([]error, 10)
		for i := range errs {
			wg.Go(func() {
				_, _, errs[i] = run(context.Background(), c, script{1: failFor(0)})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
		if n := logs.count("daemon failover"); n != 1 {
			t.Errorf("%d failover log lines, want 1\n%s", n, logs)
		}
		if len(switched) != 1 || switched[0] != c.eps[0].name+" -> "+c.eps[1].name {
			t.Errorf("failover hook calls %v", switched)
		}
		if c.URL() != c.eps[1].name {
			t.Errorf("URL() = %s, want the second daemon", c.URL())
		}
	})
}

// TestRetryCancel checks that ending the context stops the retries at
// once, with an error that wraps the context's and tells the last
// failure.
func TestRetryCancel(t *testing.T) {
	cases := []struct {
		name   string
		script script
		want   error
	}{
		{"transport failures", script{}, context.Canceled},
		{"warming up", script{0: always(&RPCError{Code: CodeWarmingUp, Message: "Verifying blocks…"})}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, _ := retryClient(t, 1, Options{})
				ctx, cancel := context.WithCancel(context.Background())
				go func() {
					time.Sleep(1100 * time.Millisecond)
					cancel()
				}()
				_, took, err := run(ctx, c, tc.script)
				if !errors.Is(err, tc.want) {
					t.Fatalf("do: %v, want %v", err, tc.want)
				}
				if took != 1100*time.Millisecond {
					t.Errorf("returned after %v, want 1.1s", took)
				}
				if !strings.Contains(err.Error(), "last error") {
					t.Errorf("error %q does not tell the last failure", err)
				}
			})
		})
	}
}
