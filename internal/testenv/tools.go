package testenv

import "amber/internal/tools"

// Pinned versions of the real components the harness runs; see
// internal/tools, which installs them.
const (
	// BtcdVersion is the btcd release the tests run against.
	BtcdVersion = tools.BtcdVersion
	// MinioVersion is the MinIO server module version the tests run
	// against.
	MinioVersion = tools.MinioVersion
)

// ToolsDir is the directory, relative to the repository root, that holds
// the installed tools.
const ToolsDir = tools.Dir

// ToolNames returns the names EnsureTool accepts, sorted.
func ToolNames() []string { return tools.ToolNames() }

// EnsureTool returns the path of the pinned binary called name ("btcd" or
// "minio"), installing it first when it is missing (tools.EnsureTool).
func EnsureTool(name string) (string, error) { return tools.EnsureTool(name) }

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory that contains a go.mod file.
func RepoRoot() (string, error) { return tools.RepoRoot() }

// LockFile takes an exclusive flock on path, creating it, and returns the
// function that releases it (tools.LockFile).
func LockFile(path string) (unlock func(), err error) { return tools.LockFile(path) }

// ensureTool is EnsureTool that also reports whether it had to install.
func ensureTool(name string) (string, bool, error) { return tools.Ensure(name) }
