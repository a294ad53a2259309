package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"amber/internal/config"
)

func runAmber(args []string, env map[string]string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	code, out, _ := runAmber([]string{"--help"}, nil)
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range append([]string{"build", "serve", "snapshot", "rpc", "demo", "version"}, config.EnvNames()...) {
		if !strings.Contains(out, want) {
			t.Errorf("amber --help lacks %q", want)
		}
	}
	for _, c := range commands {
		code, out, _ := runAmber([]string{string(c.name), "--help"}, nil)
		if code != 0 || !strings.Contains(out, "$LOG_LEVEL") || !strings.Contains(out, "default") {
			t.Errorf("amber %s --help: exit %d\n%s", c.name, code, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{"no command", nil, nil, 2, "Usage"},
		{"unknown command", []string{"frobnicate"}, nil, 2, `unknown command "frobnicate"`},
		{"bad env", []string{"serve"}, map[string]string{"NET": "regtest", "DB_DIRECTORY": "d", "DAEMON_URL": "h", "MAX_SESSIONS": "many"}, 2, "MAX_SESSIONS"},
		{"bad flag", []string{"build", "--reorg-limit=-1"}, map[string]string{"DB_DIRECTORY": "d", "DAEMON_URL": "h"}, 2, "REORG_LIMIT"},
		{"rpc without a server", []string{"rpc", "getinfo"}, map[string]string{"RPC_ADDR": "127.0.0.1:1"}, 1, "cannot reach the admin RPC at 127.0.0.1:1"},
		{"rpc without a command", []string{"rpc"}, nil, 2, "want a command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runAmber(tc.args, tc.env)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.msg) {
				t.Errorf("stderr %q lacks %q", stderr, tc.msg)
			}
		})
	}
}

// TestBinaryBadEnv builds the real binary and checks what an operator sees
// for a bad environment value: one line on stderr and exit status 2.
func TestBinaryBadEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "amber")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "NET=regtest", "DB_DIRECTORY=x", "DAEMON_URL=u:p@127.0.0.1", "COST_HARD_LIMIT=banana")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "COST_HARD_LIMIT") || !strings.Contains(lines[0], "want a number") {
		t.Errorf("stderr = %q, want one line naming COST_HARD_LIMIT and the accepted form", stderr.String())
	}
}

// TestReadmeListsEverySetting keeps the README's configuration table in step
// with the settings the binary reads.
func TestReadmeListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range config.EnvNames() {
		if !strings.Contains(string(b), "`"+name+"`") {
			t.Errorf("README.md configuration table lacks %s", name)
		}
	}
}
