package rpc

import (
	"encoding/json"
	"strings"
	"testing"
)

// A typical wallet request.
const typicalRequest = `{"jsonrpc":"2.0","id":17,"method":"blockchain.scripthash.get_history","params":["f04bf26fc16a27abaa2f10540da7a24e369e6ec408f2d901202a7c0cd4a6112d"]}`

func BenchmarkParse(b *testing.B) {
	c := codecIn(b, Dialect2, 8_100_000)
	msg := []byte(typicalRequest)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m := c.Parse(msg)
		if len(m.Requests) != 1 {
			b.Fatal(m.Errors)
		}
	}
}

// BenchmarkParsePadded parses the request padded to 1 KiB with spaces
// before the final brace, as Electrum pads.
func BenchmarkParsePadded(b *testing.B) {
	c := codecIn(b, Dialect2, 8_100_000)
	msg := []byte(typicalRequest[:len(typicalRequest)-1] + strings.Repeat(" ", 1024-len(typicalRequest)) + "}")
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if m := c.Parse(msg); len(m.Requests) != 1 {
			b.Fatal(m.Errors)
		}
	}
}

// BenchmarkParseBatch parses a batch of 20 typical requests.
func BenchmarkParseBatch(b *testing.B) {
	c := codecIn(b, Dialect2, 8_100_000)
	msg := []byte("[" + strings.TrimSuffix(strings.Repeat(typicalRequest+", ", 20), ", ") + "]")
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if m := c.Parse(msg); len(m.Requests) != 20 {
			b.Fatal(m.Errors)
		}
	}
}

// BenchmarkReply1MB encodes a 1 MB result: a string (a large raw
// transaction in hex) and a pre-encoded json.RawMessage.
func BenchmarkReply1MB(b *testing.B) {
	hexTx := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	raw := json.RawMessage(`"` + hexTx + `"`)
	for _, bc := range []struct {
		name   string
		result any
	}{{"string", hexTx}, {"raw", raw}} {
		b.Run(bc.name, func(b *testing.B) {
			c := codecIn(b, Dialect2, 8_100_000)
			id := json.RawMessage("17")
			b.SetBytes(int64(len(hexTx)))
			b.ReportAllocs()
			for b.Loop() {
				if out := c.Reply(id, bc.result, nil); len(out) < len(hexTx) {
					b.Fatalf("%.100s", out)
				}
			}
		})
	}
}
