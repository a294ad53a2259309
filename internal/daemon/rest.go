package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/btcsuite/btcd/chainhash/v2"
)

// REST availability of an endpoint.
const (
	restUnknown int32 = iota
	restYes
	restNo
)

// restRecheck is how long a daemon found without REST is left alone
// before it is probed again (it may have been restarted with -rest).
const restRecheck = 10 * time.Minute

// headerSize is the size of a serialized block header.
const headerSize = 80

// errRESTFailed means a REST block fetch did not give the block; the
// caller falls back to JSON-RPC.
var errRESTFailed = errors.New("daemon: rest block fetch failed")

// hasREST reports whether ep serves Bitcoin Core's REST interface,
// probing /rest/chaininfo.json the first time (and again restRecheck after
// a negative answer). btcd answers the probe with 401, Core without -rest
// with 404. A probe that cannot reach the daemon decides nothing.
func (c *Client) hasREST(ctx context.Context, ep *endpoint) bool {
	if s := ep.rest.Load(); s == restYes || (s == restNo && time.Since(time.Unix(0, ep.restChecked.Load())) < restRecheck) {
		return s == restYes
	}
	select {
	case ep.probing <- struct{}{}:
		defer func() { <-ep.probing }()
	case <-ctx.Done():
		return false
	}
	if s := ep.rest.Load(); s == restYes || (s == restNo && time.Since(time.Unix(0, ep.restChecked.Load())) < restRecheck) {
		return s == restYes
	}
	start := time.Now()
	status, body, err := c.restGet(ctx, ep, "rest/chaininfo.json")
	c.observe("rest", 1, start, err)
	if err != nil {
		return false
	}
	var info struct {
		Chain string `json:"chain"`
	}
	if status == http.StatusOK && json.Unmarshal(body, &info) == nil && info.Chain != "" {
		ep.rest.Store(restYes)
		c.log.Info("daemon rest interface found; fetching blocks over rest", "daemon", ep.name)
		return true
	}
	if ep.rest.Swap(restNo) != restNo {
		c.log.Info("daemon has no rest interface; fetching blocks over json-rpc", "daemon", ep.name, "status", status)
	}
	ep.restChecked.Store(time.Now().UnixNano())
	return false
}

// restBlock fetches a raw block over REST and checks that its header
// hashes to hash. Any failure returns an error wrapping errRESTFailed; a
// reply from the daemon other than the block also marks REST as unknown,
// so it is probed again before the next use.
func (c *Client) restBlock(ctx context.Context, ep *endpoint, hash chainhash.Hash) (raw []byte, err error) {
	start := time.Now()
	defer func() { c.observe("rest", 1, start, err) }()
	status, body, err := c.restGet(ctx, ep, "rest/block/"+hash.String()+".bin")
	if err != nil {
		return nil, fmt.Errorf("%w: block %s: %w", errRESTFailed, hash, err)
	}
	if status != http.StatusOK {
		ep.rest.Store(restUnknown)
		return nil, fmt.Errorf("%w: block %s: %w", errRESTFailed, hash, httpError(status, body))
	}
	if len(body) < headerSize || chainhash.DoubleHashH(body[:headerSize]) != hash {
		ep.rest.Store(restUnknown)
		return nil, fmt.Errorf("%w: block %s: reply of %d bytes is not that block", errRESTFailed, hash, len(body))
	}
	return body, nil
}

// restGet GETs path under ep's base URL, without credentials: REST needs
// none.
func (c *Client) restGet(ctx context.Context, ep *endpoint, path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, ep.rpcURL+path, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("new request to %s: %w", ep.name, err)
	}
	return c.send(ctx, req)
}
