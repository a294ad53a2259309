package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The golden transcripts in testdata/golden/*.txt are conversations on
// one or more connections, checked byte for byte:
//
//	# comment
//	! connection MAXSEND [MIN MAX]  start a new connection (defaults:
//	                                MAX_SEND 0 = none, server 1.4 to 1.6.0)
//	> MESSAGE                       what the client sends (one line)
//	>q "GO-QUOTED MESSAGE"          the same, for bytes a text file cannot hold
//	! notify METHOD PARAMS          a server notification
//	< LINE                          each line the server sends, in order
//
// Every line the server sends must be listed, so a '>' with no '<' after
// it checks that nothing was sent. The server is goldenSession: a tiny
// session with fake methods, handling batch items one after another so
// that completion order is request order.

// goldenSession plays the session package's part for the transcripts.
type goldenSession struct {
	codec              *Codec
	serverMin, version Version
	serverMax          Version
}

func goldenTable(t *testing.T) *Table[*goldenSession] {
	t.Helper()
	type m = Method[*goldenSession]
	v := MustParseVersion
	status := "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d"
	tbl, err := NewTable(
		m{Name: "server.version", Params: []string{"client_name", "protocol_version"}, IgnoreExtra: true,
			Handler: func(_ context.Context, s *goldenSession, args []json.RawMessage) (any, error) {
				ver, text, err := Negotiate(args[1], s.serverMin, s.serverMax)
				if err != nil {
					return nil, err
				}
				s.version = ver
				return []string{"ElectrumX 2.0b1", text}, nil
			}},
		m{Name: "server.ping", RemovedIn: v("1.7"),
			Handler: func(context.Context, *goldenSession, []json.RawMessage) (any, error) { return nil, nil }},
		m{Name: "server.banner",
			Handler: func(context.Context, *goldenSession, []json.RawMessage) (any, error) {
				return "Welcome to <Amber> & \"friends\"\n", nil
			}},
		m{Name: "blockchain.relayfee", RemovedIn: v("1.6"),
			Handler: func(context.Context, *goldenSession, []json.RawMessage) (any, error) { return 0.00001, nil }},
		m{Name: "blockchain.scripthash.subscribe", Params: []string{"scripthash"}, Required: 1, RemovedIn: v("1.7"),
			Handler: func(context.Context, *goldenSession, []json.RawMessage) (any, error) { return status, nil }},
		m{Name: "blockchain.block.header", Params: []string{"height", "cp_height"}, Required: 1,
			Handler: func(_ context.Context, _ *goldenSession, args []json.RawMessage) (any, error) {
				var height, cp int
				if json.Unmarshal(args[0], &height) != nil {
					return nil, BadRequest(string(args[0]) + " should be a non-negative integer")
				}
				if args[1] != nil && json.Unmarshal(args[1], &cp) != nil {
					return nil, BadRequest(string(args[1]) + " should be a non-negative integer")
				}
				if cp != 0 && height > cp {
					return nil, BadRequest(fmt.Sprintf("require header height %d <= cp_height %d <= chain height %s",
						height, cp, thousands(2480)))
				}
				return strings.Repeat("00", 80), nil
			}},
		m{Name: "test.echo", Params: []string{"value"}, Required: 1,
			Handler: func(_ context.Context, _ *goldenSession, args []json.RawMessage) (any, error) { return args[0], nil }},
		m{Name: "test.blob", Params: []string{"size"}, Required: 1,
			Handler: func(_ context.Context, _ *goldenSession, args []json.RawMessage) (any, error) {
				n, err := strconv.Atoi(string(args[0]))
				if err != nil {
					return nil, BadRequest("bad size")
				}
				return strings.Repeat("a", n), nil
			}},
		m{Name: "test.fail",
			Handler: func(context.Context, *goldenSession, []json.RawMessage) (any, error) {
				return nil, errors.New("db: something unexpected")
			}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// handle is the session's read loop body for one message.
func (s *goldenSession) handle(tbl *Table[*goldenSession], line []byte) [][]byte {
	ctx := context.Background()
	version := func() Version {
		if s.version.IsZero() {
			return s.serverMin
		}
		return s.version
	}
	msg := s.codec.Parse(line)
	if !msg.Batch {
		out := msg.Errors
		for _, r := range msg.Requests {
			result, err := tbl.Call(ctx, s, version(), r)
			if !r.IsNotification() {
				out = append(out, s.codec.Reply(r.ID, result, err))
			}
		}
		return out
	}
	b := s.codec.NewBatch(msg)
	for _, r := range msg.Requests {
		result, err := tbl.Call(ctx, s, version(), r)
		if !r.IsNotification() {
			b.Add(r.ID, result, err)
		}
	}
	if out := b.Bytes(); out != nil {
		return [][]byte{out}
	}
	return nil
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	tbl := goldenTable(t)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			problems, checked := runGolden(tbl, file, data)
			for _, p := range problems {
				t.Error(p)
			}
			if checked == 0 {
				t.Errorf("%s: no responses checked", file)
			}
		})
	}
}

// runGolden plays a transcript and returns what did not match and how
// many server lines did.
func runGolden(tbl *Table[*goldenSession], file string, data []byte) (problems []string, checked int) {
	connect := func(maxSend int, lo, hi string) *goldenSession {
		return &goldenSession{codec: NewCodec(maxSend), serverMin: MustParseVersion(lo), serverMax: MustParseVersion(hi)}
	}
	s := connect(0, "1.4", "1.6.0")
	var pending [][]byte // what the server sent and the file has not matched yet
	var sentBy string    // the line that made the server send it
	lineNo := 0
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: ", file, lineNo)+fmt.Sprintf(format, args...))
	}
	flush := func() {
		for _, p := range pending {
			fail("unexpected output after %.80q:\n%.300s", sentBy, p)
		}
		pending = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "<"):
			want := strings.TrimPrefix(strings.TrimPrefix(line, "<"), " ")
			if len(pending) == 0 {
				fail("expected %.200s, but the server sent nothing more after %.80q", want, sentBy)
				continue
			}
			if got := string(pending[0]); got != want {
				fail("after %.80q\n got %.300s\nwant %.300s", sentBy, got, want)
			}
			pending = pending[1:]
			checked++
		case strings.HasPrefix(line, ">q "):
			flush()
			msg, err := strconv.Unquote(strings.TrimPrefix(line, ">q "))
			if err != nil {
				fail("%v", err)
				return problems, checked
			}
			sentBy, pending = line, s.handle(tbl, []byte(msg))
		case strings.HasPrefix(line, ">"):
			flush()
			msg := strings.TrimPrefix(strings.TrimPrefix(line, ">"), " ")
			sentBy, pending = line, s.handle(tbl, []byte(msg))
		case strings.HasPrefix(line, "! notify "):
			flush()
			method, params, _ := strings.Cut(strings.TrimPrefix(line, "! notify "), " ")
			out, err := s.codec.Notification(method, json.RawMessage(params))
			if err != nil {
				fail("%v", err)
				return problems, checked
			}
			sentBy, pending = line, [][]byte{out}
		case strings.HasPrefix(line, "! connection"):
			flush()
			fields := strings.Fields(strings.TrimPrefix(line, "! connection"))
			maxSend, lo, hi := 0, "1.4", "1.6.0"
			if len(fields) > 0 {
				var err error
				if maxSend, err = strconv.Atoi(fields[0]); err != nil {
					fail("%v", err)
					return problems, checked
				}
			}
			if len(fields) == 3 {
				lo, hi = fields[1], fields[2]
			}
			s = connect(maxSend, lo, hi)
		default:
			fail("cannot read %.80q", line)
			return problems, checked
		}
	}
	if err := sc.Err(); err != nil {
		fail("%v", err)
	}
	flush()
	return problems, checked
}

// TestGoldenCatchesDifferences makes sure the harness notices a wrong
// byte, a missing line and an extra line.
func TestGoldenCatchesDifferences(t *testing.T) {
	tbl := goldenTable(t)
	for name, body := range map[string]string{
		"wrong byte":   "> {\"id\":1,\"method\":\"server.ping\"}\n< {\"jsonrpc\":\"2.0\",\"result\":null,\"id\":2}\n",
		"missing line": "> {\"id\":1,\"method\":\"server.ping\"}\n",
		"extra line":   "> {\"method\":\"server.ping\"}\n< {\"jsonrpc\":\"2.0\",\"result\":null,\"id\":1}\n",
	} {
		if problems, _ := runGolden(tbl, name, []byte(body)); len(problems) != 1 {
			t.Errorf("%s: problems %q, want one", name, problems)
		}
	}
}
