package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"amber/internal/config"
)

// rpcTimeout bounds one admin command; reorg and stop can take a while.
const rpcTimeout = 2 * time.Minute

// runRPC is `amber rpc COMMAND [ARGS...]`: one JSON-RPC request to the
// server's rpc:// listener, the result printed as indented JSON.
func runRPC(ctx context.Context, cfg *config.Config, out *output) error {
	if len(cfg.Args) == 0 {
		return usageError("want a command, e.g. amber rpc getinfo (amber rpc help lists them)")
	}
	params := cfg.Args[1:]
	if params == nil {
		params = []string{}
	}
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": cfg.Args[0], "params": params})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.RPCAddr)
	if err != nil {
		return fmt.Errorf("cannot reach the admin RPC at %s: %w; is amber serve running with rpc://%s in SERVICES? (set RPC_ADDR otherwise)", cfg.RPCAddr, err, cfg.RPCAddr)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("send to the admin RPC at %s: %w", cfg.RPCAddr, err)
	}
	line, err := bufio.NewReaderSize(conn, 1<<16).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("read the admin RPC's answer from %s: %w", cfg.RPCAddr, err)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("the admin RPC at %s answered something that is not JSON-RPC: %w", cfg.RPCAddr, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("%s: %s", cfg.Args[0], resp.Error.Message)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, resp.Result, "", "  "); err != nil {
		return fmt.Errorf("the admin RPC at %s answered a malformed result: %w", cfg.RPCAddr, err)
	}
	buf.WriteByte('\n')
	_, err = out.stdout.Write(buf.Bytes())
	return err
}
