// Package config turns flags and environment variables into one validated,
// immutable Config per amber subcommand. Every flag falls back to an
// environment variable (ElectrumX's names where the meaning matches, such
// as DAEMON_URL, SERVICES and MAX_SESSIONS), then to a default. A bad value
// is reported as one *Error line naming the variable and the accepted form.
package config
