package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"amber/internal/testenv"
	"amber/internal/testenv/chaingen"
)

// rssOf returns a process's resident memory in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the process status from /proc (Linux only): %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestHostileMessages sends a running amber serve messages built to hurt
// a JSON parser: nesting a hundred thousand levels deep, deep params in
// a well-formed request, a line longer than MAX_RECV, invalid UTF-8 and
// binary noise. Each gets an error reply (the oversize line is dropped
// and the next message answered, as ElectrumX does); the
// process survives, its memory stays bounded, and another client's
// answers do not change.
func TestHostileMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd and amber")
	}
	r := newRig(t, chaingen.Tiny, chaingen.Tiny.Blocks)
	dir, addr := t.TempDir(), testenv.FreeAddr(t)
	p := start(t, []string{"serve"}, serveEnv(r.btcd.URL(), dir, addr)...)
	waitHeight(t, p, addr, chaingen.Tiny.Blocks, 2*time.Minute)
	qs := querySet(t, r)
	before := answers(t, addr, qs)
	rss0 := rssOf(t, p.cmd.Process.Pid)

	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	cases := []struct {
		name string
		msg  []byte
		want string // in the reply; "" when the server may just hang up
	}{
		{"nested 400,000 deep", []byte(deep(400_000) + "\n"), "nested deeper"},
		{"deep params", []byte(`{"jsonrpc":"2.0","id":1,"method":"blockchain.block.header","params":` + deep(10_000) + "}\n"), "nested deeper"},
		{"deep objects", []byte(strings.Repeat(`{"a":`, 50_000) + "1" + strings.Repeat("}", 50_000) + "\n"), "nested deeper"},
		{"unclosed nesting", []byte(strings.Repeat("[{\"x\":", 100_000) + "\n"), "error"},
		{"invalid UTF-8", []byte("{\"id\":1,\"method\":\"server.version\",\"params\":[\"\xff\xfe\"]}\n"), "UTF-8"},
		{"binary noise", append(bytes.Repeat([]byte{0, 0xff, 0x7f, '\r'}, 1000), '\n'), "error"},
		// As ElectrumX: dropped up to its newline without a reply, and
		// the next message is served.
		{"over MAX_RECV", append(bytes.Repeat([]byte("1"), 3_000_000), "\n"+`{"id":7,"method":"server.version","params":["x","1.4"]}`+"\n"...), `"result":[`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			// The server may hang up before reading it all.
			go conn.Write(tc.msg)
			line, err := bufio.NewReader(conn).ReadString('\n')
			switch {
			case err == nil && tc.want != "" && !strings.Contains(line, tc.want):
				t.Errorf("reply %.200q, want one mentioning %q", line, tc.want)
			case err == nil && !strings.Contains(line, `"error"`) && tc.want != `"result":[`:
				t.Errorf("reply %.200q is not an error", line)
			case err != nil && tc.want != "":
				t.Errorf("no reply (%v), want an error mentioning %q", err, tc.want)
			case err != nil && isTimeout(err):
				t.Errorf("the server neither answered nor hung up within 30s")
			}
			tally.hostileSent(1)
		})
	}
	if p.exited() {
		t.Fatalf("amber serve died:\n%s", tail(p.log.String(), 30))
	}
	if rss := rssOf(t, p.cmd.Process.Pid); rss > rss0+256<<20 {
		t.Errorf("resident memory grew from %d MB to %d MB", rss0>>20, rss>>20)
	} else {
		t.Logf("resident memory %d MB before, %d MB after", rss0>>20, rss>>20)
	}
	after := answers(t, addr, qs)
	bad := 0
	for i := range qs {
		if after[i] != before[i] {
			bad++
			t.Errorf("%s %v changed after hostile messages", qs[i].Method, qs[i].Params)
		}
	}
	tally.compared(len(qs), 0, bad)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
