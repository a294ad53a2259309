package chaingen

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcjson"

	"amber/internal/testenv"
)

// Batches of submitblock requests stop at whichever limit comes first.
const (
	batchBytes  = 4 << 20 // raw block bytes per batch (twice that in hex)
	batchBlocks = 500
)

// Submit replays the chain into btcd up to height upTo: it finds the
// highest block btcd has in common with the chain, submits the chain's
// blocks above it up to upTo, in order, with submitblock in JSON-RPC
// batches, and checks that btcd's best block is then the chain's block at
// upTo. So a fresh btcd (at genesis) gets blocks 1 to upTo, calling Submit
// again with a higher upTo resumes, and submitting a branch (Spec.Branch)
// to a node on the original chain reorganises the node onto the branch —
// provided the branch is then longer, or Submit fails. btcd checks every
// block and transaction as it would a block from a peer. Submit logs the
// rate, fails the test on error and must be called from the test's
// goroutine.
func (c *Chain) Submit(t testing.TB, b testenv.Node, upTo int) {
	t.Helper()
	start := time.Now()
	n, err := c.SubmitContext(context.Background(), b, upTo)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	var size int64
	for _, raw := range c.Blocks[upTo-n : upTo] {
		size += int64(len(raw))
	}
	t.Logf("chaingen: submitted blocks %d to %d of %s (%.1f MB) in %s: %.0f blocks/s",
		upTo-n+1, upTo, c.Spec.Name, float64(size)/1e6, took.Round(time.Millisecond), float64(n)/took.Seconds())
}

// SubmitContext is Submit for any goroutine: it returns the number of
// blocks it submitted, or an error.
func (c *Chain) SubmitContext(ctx context.Context, b testenv.Node, upTo int) (int, error) {
	if upTo < 0 || upTo > c.Height() {
		return 0, fmt.Errorf("chaingen: submit up to height %d of a chain of height %d", upTo, c.Height())
	}
	var height int
	if err := callInto(b, &height, "getblockcount"); err != nil {
		return 0, err
	}
	// The highest common block; genesis at worst.
	from := min(height, upTo)
	for ; from > 0; from-- {
		var hash string
		if err := callInto(b, &hash, "getblockhash", from); err != nil {
			return 0, err
		}
		if hash == c.Hash(from).String() {
			break
		}
	}

	client := &http.Client{}
	var body bytes.Buffer
	for next := from + 1; next <= upTo; {
		body.Reset()
		body.WriteByte('[')
		first := next
		for size := 0; next <= upTo && size < batchBytes && next-first < batchBlocks; next++ {
			raw := c.Blocks[next-1]
			size += len(raw)
			if next > first {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"jsonrpc":"1.0","id":%d,"method":"submitblock","params":["`, next)
			body.Write(hex.AppendEncode(body.AvailableBuffer(), raw))
			body.WriteString(`"]}`)
		}
		body.WriteByte(']')
		if err := postBatch(ctx, client, b, body.Bytes(), first, next-1); err != nil {
			return first - from - 1, err
		}
	}

	var hash string
	if err := callInto(b, &hash, "getbestblockhash"); err != nil {
		return upTo - from, err
	}
	if want := c.Hash(upTo); hash != want.String() {
		return upTo - from, fmt.Errorf("chaingen: after submitting up to %d, btcd's best block is %s, not %s (is btcd's chain longer?)", upTo, hash, want)
	}
	return upTo - from, nil
}

// postBatch sends one batch of submitblock requests for heights first to
// last and checks that btcd accepted every block.
func postBatch(ctx context.Context, client *http.Client, b testenv.Node, body []byte, first, last int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.RPCAddr()+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("chaingen: submit blocks %d to %d: %w", first, last, err)
	}
	req.SetBasicAuth(b.Credentials())
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("chaingen: submit blocks %d to %d: %w", first, last, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("chaingen: submit blocks %d to %d: read reply: %w", first, last, err)
	}
	var replies []struct {
		ID     json.RawMessage   `json:"id"`
		Result json.RawMessage   `json:"result"`
		Error  *btcjson.RPCError `json:"error"`
	}
	if err := json.Unmarshal(raw, &replies); err != nil {
		return fmt.Errorf("chaingen: submit blocks %d to %d: HTTP %s: %.200q", first, last, resp.Status, raw)
	}
	if len(replies) != last-first+1 {
		return fmt.Errorf("chaingen: submit blocks %d to %d: %d replies", first, last, len(replies))
	}
	for _, r := range replies {
		if r.Error != nil {
			return fmt.Errorf("chaingen: submit block %s: %w", r.ID, r.Error)
		}
		if s := string(r.Result); s != "null" && s != "" {
			// submitblock answers a rejected block with a string result.
			// A block btcd already has, on a side chain, is no error.
			msg, _ := strconv.Unquote(s)
			// Bitcoin Core says "duplicate" (or "inconclusive" for a
			// side-chain block not yet on the best chain).
			if !strings.Contains(msg, "already have block") && msg != "duplicate" && msg != "inconclusive" {
				return fmt.Errorf("chaingen: submit block %s: %s", r.ID, msg)
			}
		}
	}
	return nil
}

// callInto makes one RPC call and decodes its result into v.
func callInto(b testenv.Node, v any, method string, params ...any) error {
	raw, err := b.Call(method, params...)
	if err != nil {
		return fmt.Errorf("chaingen: %s: %w", method, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("chaingen: %s: decode %.100q: %w", method, raw, err)
	}
	return nil
}
