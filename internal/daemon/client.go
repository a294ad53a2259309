package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"amber/internal/config"
)

// Defaults for the zero values of Options.
const (
	// DefaultTimeout bounds one HTTP request to the daemon.
	DefaultTimeout = 30 * time.Second
	// DefaultRetryDelay is the wait after the first failed attempt.
	DefaultRetryDelay = 250 * time.Millisecond
	// DefaultMaxRetryDelay is where the doubling backoff stops, and the
	// delay after which the client fails over to the next URL.
	DefaultMaxRetryDelay = 4 * time.Second
	// DefaultConcurrency is how many requests may be in flight at once
	// (Bitcoin Core's default work queue holds 16).
	DefaultConcurrency = 10
	// DefaultRESTMinBlock is the average block size from which RawBlocks
	// fetches over REST. A REST request costs Bitcoin Core and the client
	// more than a call in a batch does, and hex only doubles the bytes: on
	// real mainnet blocks 0..14,130 (about 220 bytes each) REST took Core
	// 92 µs of CPU a block and a getblock batch 50 µs, and a build 1.7 s
	// against 0.7 s. On the 310k chain's 17 KB blocks the two were even;
	// larger blocks favour REST, whose bytes need no hex or JSON.
	DefaultRESTMinBlock = 16 << 10
)

// Options configures a Client. The zero value is usable.
type Options struct {
	// Logger receives failover, warm-up and connectivity messages; nil
	// discards them.
	Logger *slog.Logger
	// Timeout bounds each HTTP request, a whole batch included, so a hung
	// daemon counts as a failed attempt; zero means DefaultTimeout.
	Timeout time.Duration
	// RetryDelay is the wait after the first failed attempt; it doubles
	// after each further failure. Zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// MaxRetryDelay caps the backoff; an attempt that fails at this delay
	// makes the client fail over. Zero means DefaultMaxRetryDelay.
	MaxRetryDelay time.Duration
	// Concurrency is how many HTTP requests may be in flight at once; a
	// batch counts as one. Zero means DefaultConcurrency.
	Concurrency int
	// CookieFile is a bitcoind .cookie file ("user:password" on one
	// line). Its credentials are used for URLs that carry no password;
	// it is read when first needed and again after every 401, since
	// bitcoind writes a new cookie each time it starts.
	CookieFile string
	// RESTMinBlock is the average block size, in bytes, from which blocks
	// are fetched over REST rather than in a getblock batch; zero means
	// DefaultRESTMinBlock.
	RESTMinBlock int
	// Hooks are optional callbacks for metrics.
	Hooks Hooks
}

// Hooks are optional callbacks, for metrics. Nil fields are skipped. They
// are called synchronously, from any goroutine, and must return quickly.
type Hooks struct {
	// Request is called after each HTTP request to a daemon. method is
	// the JSON-RPC method ("rest" for a REST block fetch), n the number
	// of calls in the request (more than one for a batch), and err nil on
	// success or the request's error, including *RPCError.
	Request func(method string, n int, took time.Duration, err error)
	// Failover is called when the client switches daemons; from and to
	// are redacted URLs.
	Failover func(from, to string)
}

// Client is a daemon client with failover over several URLs. It is safe
// for concurrent use.
type Client struct {
	log    *slog.Logger
	opts   Options
	httpc  *http.Client
	sem    chan struct{}
	cookie *cookie
	nextID atomic.Uint64
	// locator names the block of a confirmed transaction.
	locator atomic.Pointer[TxLocator]
	// blockSize is the average size of the blocks RawBlocks last fetched.
	blockSize atomic.Int64

	mu  sync.Mutex
	eps []*endpoint
	cur int // index of the daemon in use
}

// endpoint is one daemon URL and what the client learned about it.
type endpoint struct {
	url    config.DaemonURL
	name   string // redacted URL, for logs
	rpcURL string // scheme://host:port/, without credentials

	rest        atomic.Int32  // restUnknown, restYes or restNo
	restChecked atomic.Int64  // when rest became restNo, in Unix nanoseconds
	probing     chan struct{} // holds a token while a REST probe runs
	noSmartFee  atomic.Bool   // estimatesmartfee is missing
	noNetInfo   atomic.Bool   // getnetworkinfo is missing
	noTxBlock   atomic.Bool   // getrawtransaction takes no block hash (btcd)
	failing     atomic.Bool   // the last attempt failed in transport
	warming     atomic.Bool   // the last attempt met -28
}

// New returns a client for the daemons at urls, used in order: the first
// until it fails, then the next. It makes no request.
func New(urls []config.DaemonURL, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.MaxRetryDelay <= 0 {
		opts.MaxRetryDelay = DefaultMaxRetryDelay
	}
	opts.MaxRetryDelay = max(opts.MaxRetryDelay, opts.RetryDelay)
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.RESTMinBlock <= 0 {
		opts.RESTMinBlock = DefaultRESTMinBlock
	}
	eps, err := endpoints(urls)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.Concurrency
	// Bitcoin Core drops idle connections after 30 s (-rpcservertimeout);
	// closing ours first keeps a request from meeting a dead one.
	tr.IdleConnTimeout = 15 * time.Second
	c := &Client{
		log:   opts.Logger,
		opts:  opts,
		httpc: &http.Client{Transport: tr},
		sem:   make(chan struct{}, opts.Concurrency),
		eps:   eps,
	}
	if opts.CookieFile != "" {
		c.cookie = &cookie{path: opts.CookieFile}
	}
	return c, nil
}

// endpoints checks urls and makes their endpoints.
func endpoints(urls []config.DaemonURL) ([]*endpoint, error) {
	if len(urls) == 0 {
		return nil, ErrNoURLs
	}
	eps := make([]*endpoint, len(urls))
	for i, u := range urls {
		scheme := strings.ToLower(u.Scheme)
		if scheme == "" {
			scheme = "http"
		}
		if scheme != "http" && scheme != "https" {
			return nil, fmt.Errorf("daemon url %s: scheme %q; want http or https", u, u.Scheme)
		}
		if u.Host == "" || u.Port <= 0 || u.Port > 65535 {
			return nil, fmt.Errorf("daemon url %s: want a host and a port", u)
		}
		u.Scheme = scheme
		eps[i] = &endpoint{
			url:     u,
			name:    u.String(),
			rpcURL:  scheme + "://" + u.HostPort() + "/",
			probing: make(chan struct{}, 1),
		}
	}
	return eps, nil
}

// SetURLs replaces the daemons, for the admin RPC. Requests in flight
// finish against the daemon they were sent to; later attempts use the
// first of the new URLs.
func (c *Client) SetURLs(urls []config.DaemonURL) error {
	eps, err := endpoints(urls)
	if err != nil {
		return err
	}
	names := make([]string, len(eps))
	for i, ep := range eps {
		names[i] = ep.name
	}
	c.mu.Lock()
	c.eps, c.cur = eps, 0
	c.mu.Unlock()
	c.log.Info("daemon urls set", "daemons", names)
	return nil
}

// URL returns the daemon in use, without its password.
func (c *Client) URL() string { return c.current().name }

// URLs returns every configured daemon, in order, without passwords.
func (c *Client) URLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, len(c.eps))
	for i, ep := range c.eps {
		names[i] = ep.name
	}
	return names
}

// current returns the daemon in use.
func (c *Client) current() *endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eps[c.cur]
}

// failover switches to the daemon after from, unless from is no longer
// the one in use (another request switched already, or SetURLs replaced
// the list), so that each switch happens and is logged once.
func (c *Client) failover(from *endpoint, err error) {
	c.mu.Lock()
	if len(c.eps) < 2 || c.eps[c.cur] != from {
		c.mu.Unlock()
		return
	}
	c.cur = (c.cur + 1) % len(c.eps)
	to := c.eps[c.cur]
	c.mu.Unlock()
	c.log.Warn("daemon failover", "from", from.name, "to", to.name, "err", err)
	if c.opts.Hooks.Failover != nil {
		c.opts.Hooks.Failover(from.name, to.name)
	}
}
