package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// jsonRPCVersion is sent in every request: btcd ignores requests without
// a jsonrpc member, and Bitcoin Core treats "1.0" as its long-standing
// (pre-2.0) behaviour.
const jsonRPCVersion = "1.0"

// maxErrorBody is how much of a non-JSON reply is kept for the error.
const maxErrorBody = 256

// request is one JSON-RPC call on the wire.
type request struct {
	JSONRPC string `json:"jsonrpc"`
	ID      uint64 `json:"id"`
	Method  string `json:"method"`
	Params  []any  `json:"params"`
}

// response is one JSON-RPC reply on the wire. Bitcoin Core before 28 and
// btcd send both result and error; JSON-RPC 2.0 replies send one of them.
type response struct {
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// call is one JSON-RPC method call.
type call struct {
	method string
	params []any
}

// result is the outcome of one call of a batch: the raw result, or the
// daemon's *RPCError.
type result struct {
	raw json.RawMessage
	err error
}

// newRequest makes a request with a fresh id; nil params are sent as []
// since btcd rejects a missing or null params member.
func (c *Client) newRequest(cl call) request {
	params := cl.params
	if params == nil {
		params = []any{}
	}
	return request{JSONRPC: jsonRPCVersion, ID: c.nextID.Add(1), Method: cl.method, Params: params}
}

// post sends one call to ep and returns its result. An error reply is
// returned as *RPCError.
func (c *Client) post(ctx context.Context, ep *endpoint, cl call) (raw json.RawMessage, err error) {
	start := time.Now()
	defer func() { c.observe(cl.method, 1, start, err) }()

	req := c.newRequest(cl)
	body, err := json.Marshal(req)
	if err != nil {
		return nil, permanent(fmt.Errorf("encode %s request: %w", cl.method, err))
	}
	status, reply, err := c.exchange(ctx, ep, body)
	if err != nil {
		return nil, err
	}
	var resp response
	if err := json.Unmarshal(reply, &resp); err != nil || (resp.Error == nil && resp.Result == nil && resp.ID == nil) {
		return nil, httpError(status, reply)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	if !sameID(resp.ID, req.ID) {
		return nil, fmt.Errorf("%s: reply has id %s, want %d", cl.method, resp.ID, req.ID)
	}
	return resp.Result, nil
}

// postBatch sends calls to ep as one JSON-RPC batch and returns their
// results in the order of calls. Daemon errors are reported per call,
// except warming up, which fails the whole attempt so that it is retried.
func (c *Client) postBatch(ctx context.Context, ep *endpoint, calls []call) (out []result, err error) {
	start := time.Now()
	defer func() { c.observe(calls[0].method, len(calls), start, err) }()

	reqs := make([]request, len(calls))
	index := make(map[string]int, len(calls))
	for i, cl := range calls {
		reqs[i] = c.newRequest(cl)
		index[strconv.FormatUint(reqs[i].ID, 10)] = i
	}
	body, err := json.Marshal(reqs)
	if err != nil {
		return nil, permanent(fmt.Errorf("encode %s batch: %w", calls[0].method, err))
	}
	status, reply, err := c.exchange(ctx, ep, body)
	if err != nil {
		return nil, err
	}
	var resps []response
	if err := json.Unmarshal(reply, &resps); err != nil {
		// A daemon that cannot parse the batch answers with one error.
		var one response
		if json.Unmarshal(reply, &one) == nil && one.Error != nil {
			return nil, one.Error
		}
		return nil, httpError(status, reply)
	}
	out = make([]result, len(calls))
	seen := 0
	for _, r := range resps {
		i, ok := index[string(bytes.TrimSpace(r.ID))]
		if !ok || out[i].raw != nil || out[i].err != nil {
			return nil, fmt.Errorf("%s batch: reply has unexpected id %s", calls[0].method, r.ID)
		}
		if r.Error != nil {
			if r.Error.Code == CodeWarmingUp {
				return nil, r.Error
			}
			out[i].err = r.Error
		} else {
			out[i].raw = r.Result
			if out[i].raw == nil {
				out[i].raw = json.RawMessage("null")
			}
		}
		seen++
	}
	if seen != len(calls) {
		return nil, fmt.Errorf("%s batch: %d replies to %d calls", calls[0].method, seen, len(calls))
	}
	return out, nil
}

// exchange POSTs body to ep's JSON-RPC URL and returns the status and the
// reply. It waits for a free request slot first and bounds the request by
// Options.Timeout. A 401 or 403 is returned as *HTTPError; a 401 also makes
// the cookie file be read again for the next attempt.
func (c *Client) exchange(ctx context.Context, ep *endpoint, body []byte) (int, []byte, error) {
	user, pass := ep.url.User, ep.url.Password
	if pass == "" && c.cookie != nil {
		var err error
		if user, pass, err = c.cookie.get(); err != nil {
			return 0, nil, err
		}
	}
	req, err := http.NewRequest(http.MethodPost, ep.rpcURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, permanent(fmt.Errorf("new request to %s: %w", ep.name, err))
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	status, reply, err := c.send(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		if status == http.StatusUnauthorized && ep.url.Password == "" && c.cookie != nil {
			c.cookie.invalidate()
		}
		return 0, nil, httpError(status, reply)
	}
	return status, reply, nil
}

// send does one HTTP request within a request slot and Options.Timeout
// and reads the whole reply.
func (c *Client) send(ctx context.Context, req *http.Request) (int, []byte, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	defer func() { <-c.sem }()

	timeout := c.opts.Timeout
	if d, ok := ctx.Value(slowCallKey{}).(time.Duration); ok {
		timeout = d
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.httpc.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	reply, err := readBody(resp.Body, resp.ContentLength)
	if cerr := resp.Body.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read reply from %s: %w", req.URL.Host, err)
	}
	return resp.StatusCode, reply, nil
}

// maxPrealloc bounds the buffer allocated up front for a reply of known
// length; a longer one is read as one of unknown length.
const maxPrealloc = 256 << 20

// readBody reads a reply of n bytes (-1: unknown). A block batch's reply
// is tens of MB: read into a buffer of its size, it is not copied and
// zeroed again at each doubling of a growing one (a tenth of a sync's
// fetch CPU).
func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 || n > maxPrealloc {
		return io.ReadAll(r)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// observe reports a finished request to the Request hook.
func (c *Client) observe(method string, n int, start time.Time, err error) {
	if c.opts.Hooks.Request != nil {
		var perm *permanentError
		if errors.As(err, &perm) {
			err = perm.err
		}
		c.opts.Hooks.Request(method, n, time.Since(start), err)
	}
}

// httpError makes an *HTTPError from a reply that is not JSON-RPC.
func httpError(status int, reply []byte) *HTTPError {
	if len(reply) > maxErrorBody {
		reply = reply[:maxErrorBody]
	}
	return &HTTPError{Status: status, Body: string(reply)}
}

// sameID reports whether a reply's id is the request's.
func sameID(raw json.RawMessage, id uint64) bool {
	return string(bytes.TrimSpace(raw)) == strconv.FormatUint(id, 10)
}

// cookie holds the credentials of a bitcoind cookie file, read when first
// needed and again after invalidate.
type cookie struct {
	path string

	mu         sync.Mutex
	loaded     bool
	user, pass string
}

// get returns the cookie's user and password, reading the file if needed.
func (k *cookie) get() (user, pass string, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.loaded {
		return k.user, k.pass, nil
	}
	b, err := os.ReadFile(k.path)
	if err != nil {
		return "", "", fmt.Errorf("read cookie file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	user, pass, ok := strings.Cut(strings.TrimSpace(line), ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("read cookie file %s: want user:password on the first line", k.path)
	}
	k.user, k.pass, k.loaded = user, pass, true
	return user, pass, nil
}

// invalidate makes the next get read the file again.
func (k *cookie) invalidate() {
	k.mu.Lock()
	k.loaded = false
	k.mu.Unlock()
}
