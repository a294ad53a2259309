package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/btcsuite/btcd/btcjson"
)

// jsonRPC makes one JSON-RPC request to a daemon at addr and returns the
// raw result; an error reply is a *btcjson.RPCError. It does not retry.
func jsonRPC(httpc *http.Client, addr, user, pass, method string, params []any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{
		// btcd ignores requests that lack a jsonrpc member.
		"jsonrpc": "1.0",
		"id":      1,
		"method":  method,
		"params":  params,
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: encode %s request: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("testenv: %s: %w", method, err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s: read reply: %w", method, err)
	}
	var reply struct {
		Result json.RawMessage   `json:"result"`
		Error  *btcjson.RPCError `json:"error"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("testenv: %s: HTTP %s: %q", method, resp.Status, tailLines(string(raw), 5))
	}
	if reply.Error != nil {
		return nil, reply.Error
	}
	return reply.Result, nil
}
