package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// MinioRegion is the region MinIO reports and requests are signed for.
const MinioRegion = "us-east-1"

// MinioOptions configures StartMinio. The zero value is ready to use.
type MinioOptions struct {
	// AccessKey and SecretKey are the root credentials; empty means
	// "amberadmin" and a random secret.
	AccessKey, SecretKey string
	// Args are extra arguments to `minio server`, appended last.
	Args []string
	// StartTimeout bounds the wait for the health check; zero means one
	// minute.
	StartTimeout time.Duration
}

// Minio is a single-drive MinIO server started by StartMinio. Its methods
// that take no error result fail the test on error and must be called from
// the test's goroutine; NewRequest may be used from any goroutine.
type Minio struct {
	// Endpoint is the S3 API's host:port on 127.0.0.1.
	Endpoint string
	// ConsoleAddr is the web console's host:port on 127.0.0.1.
	ConsoleAddr string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Region is the region to sign requests for (MinioRegion).
	Region string
	// DataDir is the drive directory; Restart keeps it.
	DataDir string
	// LogPath is the file MinIO's output is appended to.
	LogPath string

	t       testing.TB
	bin     string
	args    []string
	env     []string
	timeout time.Duration
	proc    *process
	httpc   *http.Client
}

// StartMinio installs MinIO if needed, starts a server on free loopback
// ports with a temporary data directory and waits until it reports itself
// live and its console accepts connections. The server is stopped when the test ends, and the end of its log is
// shown if the test failed.
func StartMinio(t testing.TB, opts MinioOptions) *Minio {
	t.Helper()
	bin := mustTool(t, "minio")
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	dir := t.TempDir()
	m := &Minio{
		AccessKey: opts.AccessKey,
		SecretKey: opts.SecretKey,
		Region:    MinioRegion,
		DataDir:   filepath.Join(dir, "data"),
		LogPath:   filepath.Join(dir, "minio.log"),
		t:         t,
		bin:       bin,
		timeout:   timeout,
		httpc:     &http.Client{Timeout: 30 * time.Second},
	}
	if m.AccessKey == "" {
		m.AccessKey = "amberadmin"
	}
	if m.SecretKey == "" {
		m.SecretKey = randomHex(t, 16)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	m.env = append(filterEnv(os.Environ(), "MINIO_", "HOME=", "CI="),
		"HOME="+home,
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		// Nothing may reach beyond loopback: no update checks, no
		// call-home, no anonymous usage reports.
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		// CI mode relaxes the checks meant for production drives (for
		// instance, refusing the root disk) and sizes buffers for a
		// small machine.
		"MINIO_CI_CD=1",
	)
	m.args = append([]string{"server", "--certs-dir", filepath.Join(dir, "certs")}, opts.Args...)

	logTailOnFailure(t, "minio", m.LogPath)
	t.Cleanup(m.cleanup)

	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(2); err != nil {
			t.Fatal(err)
		}
		m.Endpoint = hostPort("127.0.0.1", ports[0])
		m.ConsoleAddr = hostPort("127.0.0.1", ports[1])
		var exited bool
		if exited, err = m.start(); err == nil || !exited {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: start minio: %v", err)
	}
	return m
}

// start launches MinIO with the current ports and waits until it is live.
// On error, exited tells whether MinIO exited by itself, as it does when a
// port is taken; a MinIO that does not get ready in time is killed.
func (m *Minio) start() (exited bool, err error) {
	args := append([]string{}, m.args...)
	args = append(args, "--address", m.Endpoint, "--console-address", m.ConsoleAddr, m.DataDir)
	p, err := startProcess("minio", m.bin, args, m.env, m.LogPath)
	if err != nil {
		return false, err
	}
	m.proc = p
	err = waitFor(p, m.timeout, func() error {
		resp, err := m.httpc.Get(m.URL() + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health check: HTTP %s", resp.Status)
		}
		// The console comes up a little after the S3 API.
		conn, err := net.DialTimeout("tcp", m.ConsoleAddr, time.Second)
		if err != nil {
			return fmt.Errorf("console: %w", err)
		}
		conn.Close()
		return nil
	})
	if err != nil && !p.exited() {
		_ = p.kill()
		return false, err
	}
	return err != nil, err
}

func (m *Minio) cleanup() {
	if m.proc == nil || m.proc.exited() {
		return
	}
	if err := m.proc.stop(stopTimeout); err != nil {
		m.t.Logf("testenv: stop minio: %v", err)
	}
}

// URL returns the S3 endpoint URL, http://127.0.0.1:port.
func (m *Minio) URL() string { return "http://" + m.Endpoint }

// Pid returns the process id of the running (or last) MinIO process.
func (m *Minio) Pid() int { return m.proc.pid() }

// Running reports whether the MinIO process is alive.
func (m *Minio) Running() bool { return m.proc != nil && !m.proc.exited() }

// Stop shuts MinIO down gracefully (SIGTERM), killing it if it takes longer
// than 30 seconds, which fails the test.
func (m *Minio) Stop() {
	m.t.Helper()
	if err := m.proc.stop(stopTimeout); err != nil {
		m.t.Fatal(err)
	}
}

// Kill ends MinIO at once with SIGKILL and waits until the process is gone.
func (m *Minio) Kill() {
	m.t.Helper()
	if err := m.proc.kill(); err != nil {
		m.t.Fatal(err)
	}
}

// Restart stops MinIO if it is running and starts it again with the same
// data directory, ports and credentials.
func (m *Minio) Restart() {
	m.t.Helper()
	if m.Running() {
		m.Stop()
	}
	if _, err := m.start(); err != nil {
		m.t.Fatalf("testenv: restart minio: %v", err)
	}
}

// NewRequest returns an S3 request for path ("/bucket/key", with an
// optional "?query"), signed with the root credentials (AWS Signature
// Version 4, path-style). Send it with any http.Client. Bodies are signed
// in full, so keep them test-sized.
func (m *Minio) NewRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, m.URL()+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("testenv: s3 request %s %s: %w", method, path, err)
	}
	signV4(req, body, m.AccessKey, m.SecretKey, m.Region, time.Now())
	return req, nil
}

// Do sends a signed S3 request and returns the status code and the body of
// the reply.
func (m *Minio) Do(ctx context.Context, method, path string, body []byte) (status int, reply []byte, err error) {
	req, err := m.NewRequest(ctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := m.httpc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("testenv: s3 %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	reply, err = io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("testenv: s3 %s %s: read reply: %w", method, path, err)
	}
	return resp.StatusCode, reply, nil
}

// CreateBucket creates a bucket.
func (m *Minio) CreateBucket(name string) {
	m.t.Helper()
	status, reply, err := m.Do(context.Background(), http.MethodPut, "/"+name, nil)
	if err != nil {
		m.t.Fatal(err)
	}
	if status != http.StatusOK {
		m.t.Fatalf("testenv: create bucket %s: HTTP %d: %s", name, status, reply)
	}
}
