package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopTimeout is how long Stop waits for a graceful exit before it kills.
const stopTimeout = 30 * time.Second

// logTailLines is how many lines of a daemon's output a failed test shows.
const logTailLines = 80

// process is one running daemon: its own process group, output appended to
// a log file, and a goroutine that reaps it.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has been reaped
	waitErr error         // the result of Wait, set before done closes
}

// startProcess starts bin in a new process group (see sysProcAttr) and
// appends its standard output and error to logPath.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: open %s log: %w", name, err)
	}
	defer out.Close() // the child has its own copy

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended and been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signalGroup sends sig to the process group; a group that is already gone
// is not an error.
func (p *process) signalGroup(sig syscall.Signal) error {
	if p.exited() {
		return nil
	}
	if err := syscall.Kill(-p.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testenv: signal %s (pid %d): %w", p.name, p.pid(), err)
	}
	return nil
}

// stop asks the process to exit with SIGTERM and waits; after timeout it
// kills the group. It returns an error when the process had to be killed.
func (p *process) stop(timeout time.Duration) error {
	if err := p.signalGroup(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	if err := p.kill(); err != nil {
		return err
	}
	return fmt.Errorf("testenv: %s (pid %d) ignored SIGTERM for %v and was killed", p.name, p.pid(), timeout)
}

// kill sends SIGKILL to the process group and waits until the process is
// reaped.
func (p *process) kill() error {
	if err := p.signalGroup(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// exitError describes how the process ended, for error messages.
func (p *process) exitError() error {
	if p.waitErr == nil {
		return fmt.Errorf("testenv: %s exited", p.name)
	}
	return fmt.Errorf("testenv: %s exited: %w", p.name, p.waitErr)
}

// handedOut is every port freePorts returned in this process. A port is
// free only until someone binds it: without this, a later call could
// return a port an earlier caller has not bound yet (a node that starts
// later in a test), and one of the two would fail with "address already
// in use".
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago and that no earlier call in this process returned. All
// listeners are open at once so the ports differ.
func freePorts(n int) ([]int, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testenv: find a free port: %w", err)
		}
		ls = append(ls, l) // held open, so the next Listen gets another port
		if p := l.Addr().(*net.TCPAddr).Port; !handedOut.ports[p] {
			handedOut.ports[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// FreeAddr returns 127.0.0.1:port for a port that was free a moment ago
// and that no other caller in this process (testenv's daemons, MinIO,
// HAProxy included) has been given.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return hostPort("127.0.0.1", ports[0])
}

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return tailLines(string(b), n)
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// logTailOnFailure registers a cleanup that shows the end of the daemon's
// log when the test has failed. Register it before the cleanup that stops
// the daemon, so that it runs after it and sees the last lines.
func logTailOnFailure(t testing.TB, name, path string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last lines of the %s log %s:\n%s", name, path, tailFile(path, logTailLines))
		}
	})
}

// filterEnv returns env without the variables whose names start with one of
// the prefixes, so a developer's own settings do not leak into a daemon.
func filterEnv(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// waitFor calls ready every interval until it returns nil, the process
// exits, or timeout passes.
func waitFor(p *process, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p.exited() {
			return p.exitError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not ready after %v: %w", p.name, timeout, err)
		}
		select {
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
