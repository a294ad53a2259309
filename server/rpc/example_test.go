package rpc_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"

	"amber/server/rpc"
)

// session stands for the session package's type: the state of one
// client connection, which every handler receives.
type session struct {
	codec   *rpc.Codec
	version rpc.Version
}

var methods = []rpc.Method[*session]{
	{
		Name:        "server.version",
		Params:      []string{"client_name", "protocol_version"},
		IgnoreExtra: true, // spec §3.2 rule 8
		Handler: func(_ context.Context, s *session, args []json.RawMessage) (any, error) {
			v, text, err := rpc.Negotiate(args[1], rpc.MustParseVersion("1.4"), rpc.MustParseVersion("1.6.0"))
			if err != nil {
				return nil, err // error 1; the session would also disconnect
			}
			s.version = v
			return []string{"Amber 0.1", text}, nil
		},
	},
	{
		Name:     "blockchain.block.header",
		Params:   []string{"height", "cp_height"},
		Required: 1,
		Handler: func(_ context.Context, _ *session, args []json.RawMessage) (any, error) {
			var height uint32
			if err := json.Unmarshal(args[0], &height); err != nil {
				return nil, rpc.BadRequest(string(args[0]) + " should be a non-negative integer")
			}
			// args[1] is nil: cp_height was not given.
			return "0100000000000000", nil
		},
	},
	{
		Name:      "blockchain.relayfee",
		RemovedIn: rpc.MustParseVersion("1.6"), // ≤1.5 only
		Handler: func(context.Context, *session, []json.RawMessage) (any, error) {
			return 0.00001, nil
		},
	},
}

// serve is a session's read loop body for one message: single requests
// are answered one by one, batch items concurrently into one reply.
func (s *session) serve(ctx context.Context, table *rpc.Table[*session], line []byte, send func([]byte)) {
	msg := s.codec.Parse(line)
	if !msg.Batch {
		for _, e := range msg.Errors {
			send(e)
		}
		for _, r := range msg.Requests {
			result, err := table.Call(ctx, s, s.version, r)
			if !r.IsNotification() {
				send(s.codec.Reply(r.ID, result, err))
			}
		}
		return
	}
	b := s.codec.NewBatch(msg)
	var wg sync.WaitGroup
	for _, r := range msg.Requests {
		wg.Go(func() {
			result, err := table.Call(ctx, s, s.version, r)
			if !r.IsNotification() {
				b.Add(r.ID, result, err)
			}
		})
	}
	wg.Wait()
	if out := b.Bytes(); out != nil {
		send(out)
	}
}

// Example shows the package under a session: a method table whose
// handlers take the session, the read loop, and what goes on the wire
// (here, standard output stands for the connection).
func Example() {
	table, err := rpc.NewTable(methods...)
	if err != nil {
		panic(err)
	}
	s := &session{codec: rpc.NewCodec(8_100_000)}
	send := func(b []byte) { os.Stdout.Write(append(b, '\n')) }
	for _, line := range []string{
		`{"jsonrpc":"2.0","id":0,"method":"server.version","params":["electrum/4.8.1",["1.4","2.0"]]}`,
		`{"jsonrpc":"2.0","id":1,"method":"blockchain.block.header","params":{"height":5}}`,
		`{"jsonrpc":"2.0","id":2,"method":"blockchain.block.header","params":[-1]}`,
		`{"jsonrpc":"2.0","id":3,"method":"blockchain.relayfee","params":[]}`,
		`[{"jsonrpc":"2.0","id":4,"method":"blockchain.block.header"}, "junk"]`,
		`{"jsonrpc":"2.0","method":"blockchain.block.header","params":[7]}`,
	} {
		s.serve(context.Background(), table, []byte(line), send)
	}
	// Output:
	// {"jsonrpc":"2.0","result":["Amber 0.1","1.6.0"],"id":0}
	// {"jsonrpc":"2.0","result":"0100000000000000","id":1}
	// {"jsonrpc":"2.0","error":{"code":1,"message":"-1 should be a non-negative integer"},"id":2}
	// {"jsonrpc":"2.0","error":{"code":-32601,"message":"unknown method \"blockchain.relayfee\""},"id":3}
	// [{"jsonrpc":"2.0","error":{"code":-32600,"message":"request object must be a dictionary"},"id":null}, {"jsonrpc":"2.0","error":{"code":-32602,"message":"0 arguments passed to method \"blockchain.block.header\" but it requires 1"},"id":4}]
}
