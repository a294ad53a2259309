package localdemo

import (
	"bytes"
	"context"
	"encoding/json"

	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// btcd is the demo's regtest node: a child process in its own process
// group, and a small JSON-RPC client.
type btcd struct {
	addr       string // 127.0.0.1:port of the RPC server
	user, pass string
	cmd        *exec.Cmd
	done       chan struct{} // closed once the process is reaped
	httpc      *http.Client
}

// startBtcd starts bin in regtest with its data under dir, paying block
// rewards to miningAddr, and waits until its RPC server answers.
func startBtcd(ctx context.Context, bin, dir, miningAddr, pass string) (*btcd, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	conf := filepath.Join(dir, "btcd.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	b := &btcd{
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		user:  "amber",
		pass:  pass,
		done:  make(chan struct{}),
		httpc: &http.Client{Timeout: 30 * time.Second},
	}
	args := []string{
		"--configfile=" + conf,
		"--regtest",
		"--txindex",
		"--datadir=" + filepath.Join(dir, "data"),
		"--logdir=" + filepath.Join(dir, "logs"),
		"--rpcuser=" + b.user,
		"--rpcpass=" + b.pass,
		"--rpclisten=" + b.addr,
		"--notls",
		"--nodnsseed",
		"--nolisten",
		"--connect=127.0.0.1:0", // no peers
		"--miningaddr=" + miningAddr,
		"--debuglevel=MINR=warn",
	}
	logf, err := os.OpenFile(filepath.Join(dir, "btcd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("demo: open btcd log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	b.cmd = exec.Command(bin, args...)
	// btcd creates ~/.btcd even when told to use other paths.
	b.cmd.Env = append(os.Environ(), "HOME="+home)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = sysProcAttr()
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("demo: start btcd: %w", err)
	}
	go func() {
		_ = b.cmd.Wait()
		close(b.done)
	}()

	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := b.call(ctx, "getblockcount"); err == nil {
			return b, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			b.stop()
			return nil, fmt.Errorf("demo: btcd did not answer (log in %s): %w", dir, err)
		}
		select {
		case <-b.done:
			return nil, fmt.Errorf("demo: btcd exited at start; see %s", filepath.Join(dir, "btcd.out"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM to btcd's process group, and SIGKILL after 15 s.
func (b *btcd) stop() {
	pid := b.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-b.done:
		return
	case <-time.After(15 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-b.done
}

// url is the DAEMON_URL of the node.
func (b *btcd) url() string { return "http://" + b.user + ":" + b.pass + "@" + b.addr + "/" }

// rpcError is an error reply of the node.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

// call makes one JSON-RPC call and returns its result.
func (b *btcd) call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "1.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return nil, fmt.Errorf("demo: encode %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.addr+"/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", method, err)
	}
	req.SetBasicAuth(b.user, b.pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("demo: %s: read reply: %w", method, err)
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, fmt.Errorf("demo: %s: HTTP %s: %.200q", method, resp.Status, raw)
	}
	if reply.Error != nil {
		return nil, fmt.Errorf("demo: %s: %w", method, reply.Error)
	}
	return reply.Result, nil
}

// callInto makes one call and decodes its result into v.
func (b *btcd) callInto(ctx context.Context, v any, method string, params ...any) error {
	raw, err := b.call(ctx, method, params...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("demo: %s: decode %.100q: %w", method, raw, err)
	}
	return nil
}

// height returns the node's block count.
func (b *btcd) height(ctx context.Context) (int, error) {
	var h int
	err := b.callInto(ctx, &h, "getblockcount")
	return h, err
}

// generate mines n blocks to the mining address.
func (b *btcd) generate(ctx context.Context, n int) error {
	_, err := b.call(ctx, "generate", n)
	return err
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("demo: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
