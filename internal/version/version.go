// Package version names this build of Amber, for server.version,
// snapshot manifests, logs and `amber version`.
package version

import "runtime/debug"

// Version is the release, set at link time with
// -ldflags "-X amber/internal/version.Version=v1.2.3".
var Version = "0.1.0-dev"

// Software is the server name sent in server.version replies.
func Software() string { return "Amber " + Version }

// Commit is the VCS revision the binary was built from, if recorded.
func Commit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
