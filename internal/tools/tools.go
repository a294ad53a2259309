// Package tools installs the pinned third-party binaries Amber runs
// beside itself (btcd, MinIO) with `go install`, once, into a versioned
// directory. The test harness (internal/testenv) and `amber demo` share it;
// it never imports "testing", so the amber binary can use it.
package tools

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Pinned versions of the real components the harness runs. Changing one
// installs the new version next to the old one on the next run.
const (
	// BtcdVersion is the btcd release the tests run against.
	BtcdVersion = "v0.26.2"
	// MinioVersion is the MinIO server module version the tests run
	// against (MinIO publishes no semantic versions to the module proxy).
	MinioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"
)

// Dir is the directory, relative to the repository root, that holds the
// installed tools, one subdirectory per name and version:
// .tools/btcd-v0.26.2/btcd.
const Dir = ".tools"

// module is the module path that identifies Amber's repository root.
const module = "amber"

// tool is one installable binary.
type tool struct {
	name    string // binary name, and the key of EnsureTool
	pkg     string // package path given to go install
	version string
}

var knownTools = map[string]tool{
	"btcd":  {name: "btcd", pkg: "github.com/btcsuite/btcd", version: BtcdVersion},
	"minio": {name: "minio", pkg: "github.com/minio/minio", version: MinioVersion},
}

// ToolNames returns the names EnsureTool accepts, sorted.
func ToolNames() []string {
	names := make([]string, 0, len(knownTools))
	for n := range knownTools {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EnsureTool returns the path of the pinned binary called name ("btcd" or
// "minio"), installing it first with `go install` when it is missing.
//
// Binaries live in <root>/.tools/<name>-<version>/<name>, where <root> is
// the repository root (the nearest directory above the working directory
// whose go.mod declares module amber); outside the repository they live in
// <user cache dir>/amber/tools/<name>-<version>/<name>. Installs are serialised across processes with a file
// lock, so parallel test binaries install a tool once, and each install is
// built in a temporary directory that is renamed into place only when
// complete: an interrupted install leaves nothing that looks installed.
func EnsureTool(name string) (string, error) {
	path, _, err := Ensure(name)
	return path, err
}

// Ensure is EnsureTool that also reports whether it had to install.
func Ensure(name string) (path string, installed bool, err error) {
	tl, ok := knownTools[name]
	if !ok {
		return "", false, fmt.Errorf("tools: unknown tool %q (known: %s)", name, strings.Join(ToolNames(), ", "))
	}
	dir, err := InstallDir()
	if err != nil {
		return "", false, err
	}
	return installTool(dir, tl, goInstall)
}

// InstallDir returns the directory tools are installed into: .tools under
// the repository root when the working directory is inside Amber's
// repository, otherwise amber/tools under the user cache directory.
func InstallDir() (string, error) {
	if root, err := RepoRoot(); err == nil && isAmberModule(root) {
		return filepath.Join(root, Dir), nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tools: find an install directory: %w", err)
	}
	return filepath.Join(cache, "amber", "tools"), nil
}

// isAmberModule reports whether root's go.mod declares module amber.
func isAmberModule(root string) bool {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(rest) == module
		}
	}
	return false
}

// installTool returns the path of tl's binary under tools, running install
// (which must leave the binary in the directory it is given) when missing.
func installTool(tools string, tl tool, install func(tl tool, dir string) error) (path string, installed bool, err error) {
	dirName := tl.name + "-" + tl.version
	final := filepath.Join(tools, dirName)
	bin := filepath.Join(final, tl.name)
	if isExecutable(bin) {
		return bin, false, nil
	}

	if err := os.MkdirAll(tools, 0o755); err != nil {
		return "", false, fmt.Errorf("tools: create %s: %w", tools, err)
	}
	unlock, err := LockFile(filepath.Join(tools, "."+dirName+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()

	// Another process may have finished the install while we waited.
	if isExecutable(bin) {
		return bin, false, nil
	}
	// Whatever is left from an interrupted install is ours to remove now
	// that we hold the lock.
	stale, _ := filepath.Glob(filepath.Join(tools, "."+dirName+".tmp-*"))
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}
	if err := os.RemoveAll(final); err != nil {
		return "", false, fmt.Errorf("tools: remove incomplete %s: %w", final, err)
	}

	tmp, err := os.MkdirTemp(tools, "."+dirName+".tmp-")
	if err != nil {
		return "", false, fmt.Errorf("tools: install %s: %w", tl.name, err)
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	if err := install(tl, tmp); err != nil {
		return "", false, err
	}
	if !isExecutable(filepath.Join(tmp, tl.name)) {
		return "", false, fmt.Errorf("tools: installing %s@%s produced no %s binary", tl.pkg, tl.version, tl.name)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", false, fmt.Errorf("tools: install %s: %w", tl.name, err)
	}
	return bin, true, nil
}

// goInstall runs `go install pkg@version` with GOBIN set to dir.
func goInstall(tl tool, dir string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("tools: install %s: go command not found: %w", tl.name, err)
	}
	cmd := exec.Command(goBin, "install", tl.pkg+"@"+tl.version)
	// Run outside the module so its go.mod and any go.work play no part.
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tools: go install %s@%s: %w\n%s", tl.pkg, tl.version, err, tailLines(out.String(), 40))
	}
	return nil
}

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that contains a go.mod file.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("tools: find repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tools: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// LockFile takes an exclusive flock on path, creating it, and returns the
// function that releases it: how concurrently running test binaries build
// a shared artefact once. The lock also excludes other goroutines of this
// process, because each call opens its own file description.
func LockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tools: open lock %s: %w", path, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tools: lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
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
