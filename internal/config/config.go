package config

import (
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"amber/internal/chain"
)

// ErrHelp is returned by Load when -h or --help was asked for; the usage
// has been written already.
var ErrHelp = flag.ErrHelp

// Error is a configuration mistake: one variable with a bad value. Its
// message is one line that names the variable and the accepted form.
type Error struct {
	Var    string // environment variable name, e.g. DAEMON_URL
	Value  string
	Reason string // what is wrong, and the accepted form
}

func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config: %s: %s", e.Var, e.Reason)
	}
	return fmt.Sprintf("config: %s=%q: %s", e.Var, e.Value, e.Reason)
}

// Command names the subcommands that take configuration. Each option
// belongs to the commands that use it, so `amber CMD --help` lists exactly
// what CMD reads.
type Command string

// The subcommands of amber that read configuration.
const (
	Build    Command = "build"
	Serve    Command = "serve"
	Snapshot Command = "snapshot"
	RPC      Command = "rpc"
	Demo     Command = "demo"
)

// Config is the validated, immutable configuration of one amber process.
// Fields a command does not read keep their defaults.
type Config struct {
	Command Command
	// Args are the words after the flags: the action of `amber snapshot`
	// and the command of `amber rpc`.
	Args []string

	// Chain.
	Coin    string
	Network *chain.Network

	// Daemon.
	DaemonURLs         []DaemonURL
	DaemonCookieFile   string
	DaemonRetryMax     time.Duration
	DaemonPollInterval time.Duration
	ZMQHashBlock       string
	ZMQSequence        string

	// DaemonBlocksDir is Core's blocks directory to read blocks from:
	// empty to find it (auto), "off" for never.
	DaemonBlocksDir string

	// Builder.
	Once   bool
	Verify bool

	// Storage.
	DBDirectory string
	ReorgLimit  int
	CacheMB     int

	// Snapshots.
	SnapshotURL      string
	SnapshotInterval time.Duration
	// SnapshotEveryBlocks, when set, replaces SnapshotInterval.
	SnapshotEveryBlocks int
	SigningKeyFile      string
	TrustedKeys         []ed25519.PublicKey
	// SnapshotMaxBehind is how many blocks a local DB may lag the newest
	// trusted snapshot before the snapshot replaces it; 0 never.
	SnapshotMaxBehind int
	// SnapshotGCGrace is how long retention waits before deleting a data
	// file no kept manifest needs.
	SnapshotGCGrace time.Duration

	// Listeners.
	Services       []Service
	ReportServices []Service
	SSLCertFile    string
	SSLKeyFile     string
	HTTPAddr       string
	Pprof          bool

	// Server identity.
	DonationAddress string
	BannerFile      string

	// Resource controls (spec §7).
	MaxSessions       int
	MaxRecv           int
	MaxSend           int
	CostSoftLimit     float64
	CostHardLimit     float64
	RequestSleep      time.Duration
	InitialConcurrent int
	BandwidthUnitCost int
	SubnetIPv4        int
	GroupPrivate      bool
	SubnetIPv6        int
	RequestTimeout    time.Duration
	SessionTimeout    time.Duration
	DropClient        *regexp.Regexp
	DropClientUnknown bool
	CostDecayPerSec   float64 // 0: COST_HARD_LIMIT/10000, as ElectrumX
	MaxSessionSubs    int
	MaxSubs           int
	BanList           []netip.Prefix
	ProxyProtocol     bool
	ProxyTrusted      []netip.Prefix

	// Readiness and shutdown.
	ReadyMaxLag   int
	DrainDelay    time.Duration
	ShutdownGrace time.Duration

	// Peers.
	PeerDiscovery      string // on, self or off
	PeerAnnounce       bool
	PeerSeeds          []string // real names; nil means the network's list
	PeerAllowPrivate   bool
	PeerVerifyInterval time.Duration
	PeerRetryInterval  time.Duration
	TorProxyHost       string
	TorProxyPort       int // 0: auto-detect, for .onion peers only
	BlacklistURL       string

	// Logging.
	LogLevel  slog.Level
	LogFormat string // text or json

	// RPCAddr is the admin RPC address `amber rpc` talks to.
	RPCAddr string

	// Demo (`amber demo`).
	DemoDir           string
	DemoBlockInterval time.Duration
	DemoPort          int
}

// Load parses args (the flags after the subcommand) with getenv as the
// fallback for every flag not given, validates everything once and returns
// the result. Usage goes to usage when help is asked for or a flag is
// unknown. Errors are *Error values (or ErrHelp) and print as one line.
func Load(cmd Command, args []string, getenv func(string) string, usage io.Writer) (*Config, error) {
	opts := optionsFor(cmd)
	fs := flag.NewFlagSet("amber "+string(cmd), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	vals := make(map[string]*flagValue, len(opts))
	for _, o := range opts {
		v := &flagValue{boolean: o.boolean}
		vals[o.env] = v
		fs.Var(v, o.flag(), o.usage)
	}
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			WriteUsage(usage, cmd)
			return nil, ErrHelp
		}
		return nil, &Error{Var: "flags", Reason: err.Error() + " (see amber " + string(cmd) + " --help)"}
	}
	if fs.NArg() > 0 && cmd != Snapshot && cmd != RPC {
		return nil, &Error{Var: "flags", Reason: fmt.Sprintf("unexpected argument %q (see amber %s --help)", fs.Arg(0), cmd)}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	c := &Config{Command: cmd, Args: fs.Args()}
	raw := map[string]string{}
	for _, o := range opts {
		v := o.def
		if set[o.flag()] {
			v = vals[o.env].s
		} else if e := getenv(o.env); e != "" {
			v = e
		}
		raw[o.env] = v
	}
	// COIN and NET first: other defaults depend on the network.
	for _, o := range opts {
		if err := o.parse(c, raw[o.env]); err != nil {
			return nil, &Error{Var: o.env, Value: redact(o, raw[o.env]), Reason: err.Error()}
		}
	}
	// A flag shows in ps: daemon credentials come from the environment or
	// the cookie file only.
	if set["daemon-url"] {
		for _, u := range c.DaemonURLs {
			if u.Password != "" {
				return nil, &Error{Var: "flags", Reason: "--daemon-url carries a password, which ps shows to every user: set DAEMON_URL in the environment, or leave the password out and use the cookie file (DAEMON_COOKIE_FILE)"}
			}
		}
	}
	if err := c.validate(cmd, raw); err != nil {
		return nil, err
	}
	return c, nil
}

// flagValue holds a flag's text; boolean ones may be given bare.
type flagValue struct {
	s       string
	boolean bool
}

func (f *flagValue) String() string     { return f.s }
func (f *flagValue) Set(s string) error { f.s = s; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.boolean }

// redact hides secrets (passwords in URLs) from error messages.
func redact(o option, v string) string {
	if o.env == "DAEMON_URL" {
		return redactURLs(v)
	}
	return v
}

// validate checks rules that span several options.
func (c *Config) validate(cmd Command, raw map[string]string) error {
	needsDaemon := cmd == Build || cmd == Serve
	if needsDaemon && len(c.DaemonURLs) == 0 {
		return &Error{Var: "DAEMON_URL", Reason: "required; want http://user:pass@host:port/ (comma-separated for failover)"}
	}
	if (cmd == Build || cmd == Serve) && c.DBDirectory == "" {
		return &Error{Var: "DB_DIRECTORY", Reason: "required; want the directory that holds (or will hold) the index"}
	}
	for i := range c.DaemonURLs {
		if c.DaemonURLs[i].Port == 0 && c.Network != nil {
			c.DaemonURLs[i].Port = c.Network.RPCPort
		}
	}
	tls := false
	for _, s := range c.Services {
		if s.Proto == "ssl" || s.Proto == "wss" {
			tls = true
		}
	}
	if tls && (c.SSLCertFile == "" || c.SSLKeyFile == "") {
		return &Error{Var: "SSL_CERTFILE", Reason: "SSL_CERTFILE and SSL_KEYFILE are required when SERVICES has ssl:// or wss://; want paths to PEM files"}
	}
	if c.PeerAnnounce && !c.PeerAllowPrivate && c.Network != nil && c.Network.Name != "regtest" {
		for _, s := range c.ReportServices {
			if ip, err := netip.ParseAddr(s.Host); err == nil && (ip.IsPrivate() || ip.IsLoopback()) {
				return &Error{Var: "REPORT_SERVICES", Value: raw["REPORT_SERVICES"], Reason: "a private or loopback address cannot be announced to peers; want a public host, PEER_ANNOUNCE=off or PEER_ALLOW_PRIVATE=on"}
			}
		}
	}
	if c.CostHardLimit != 0 || c.CostSoftLimit != 0 {
		if c.CostHardLimit < c.CostSoftLimit {
			return &Error{Var: "COST_HARD_LIMIT", Value: raw["COST_HARD_LIMIT"], Reason: fmt.Sprintf("must be at least COST_SOFT_LIMIT (%g)", c.CostSoftLimit)}
		}
		if c.CostHardLimit == c.CostSoftLimit {
			c.CostHardLimit = c.CostSoftLimit + 1
		}
	}
	return nil
}

// WriteUsage writes the options of cmd as a table: flag, environment
// variable, default and meaning.
func WriteUsage(w io.Writer, cmd Command) {
	fmt.Fprintf(w, "Usage: amber %s [flags]%s\n\n%s\n\nEvery flag falls back to its environment variable, then to the default.\n\nFlags:\n", cmd, commandArgs[cmd], commandHelp[cmd])
	writeOptions(w, optionsFor(cmd), false)
}

// writeOptions prints options grouped, with their commands when asked.
func writeOptions(w io.Writer, opts []option, withCmds bool) {
	group := ""
	for _, o := range opts {
		if o.group != group {
			group = o.group
			fmt.Fprintf(w, "\n  %s\n", group)
		}
		def := o.def
		if def == "" {
			def = o.defNote
		}
		if def == "" {
			def = "(none)"
		}
		cmds := ""
		if withCmds {
			names := make([]string, len(o.cmds))
			for i, c := range o.cmds {
				names[i] = string(c)
			}
			cmds = "  [" + strings.Join(names, " ") + "]"
		}
		fmt.Fprintf(w, "    --%-24s %-28s default %s%s\n", o.flag(), "$"+o.env, def, cmds)
		fmt.Fprintf(w, "        %s\n", o.usage)
	}
}

var commandHelp = map[Command]string{
	Build:    "Sync the index from the daemon into DB_DIRECTORY and publish snapshots to SNAPSHOT_URL.",
	Serve:    "Serve the Electrum protocol from DB_DIRECTORY (bootstrapped from SNAPSHOT_URL when empty), following the daemon.",
	Snapshot: "List, show, verify, pull and garbage-collect snapshots at SNAPSHOT_URL.",
	RPC:      "Send an admin command to a running server's rpc:// listener.",
	Demo:     "Run a local regtest chain, builder, snapshot and server in one go.",
}

var commandArgs = map[Command]string{
	Snapshot: " list|show|verify|pull|gc [snapshot]",
	RPC:      " command [args...]",
}

// WriteAllUsage writes every option of every command, with the commands
// that read it: the table behind `amber --help`.
func WriteAllUsage(w io.Writer) {
	fmt.Fprintf(w, "Options (flag, environment variable, default, commands):\n")
	writeOptions(w, options, true)
}

// EnvNames lists every environment variable any command reads, sorted.
func EnvNames() []string {
	seen := map[string]bool{}
	var names []string
	for _, o := range options {
		if !seen[o.env] {
			seen[o.env] = true
			names = append(names, o.env)
		}
	}
	sort.Strings(names)
	return names
}

func optionsFor(cmd Command) []option {
	var out []option
	for _, o := range options {
		for _, c := range o.cmds {
			if c == cmd {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

func (o option) flag() string {
	if o.flagAs != "" {
		return o.flagAs
	}
	return strings.ReplaceAll(strings.ToLower(o.env), "_", "-")
}

// coreDataSubdirs are Bitcoin Core's per-network data subdirectories.
var coreDataSubdirs = map[string]string{"mainnet": "", "testnet": "testnet3", "testnet4": "testnet4", "signet": "signet", "regtest": "regtest"}

// DefaultCookieFile is where Bitcoin Core writes its cookie for net with
// the default data directory: ~/.bitcoin/[subdir/].cookie. It is empty
// when the home directory is unknown.
func DefaultCookieFile(net *chain.Network) string {
	home, err := os.UserHomeDir()
	if err != nil || net == nil {
		return ""
	}
	return filepath.Join(home, ".bitcoin", coreDataSubdirs[net.Name], ".cookie")
}

// DefaultCacheMB is CACHE_MB's default.
const DefaultCacheMB = 1200

// CacheSplit is how a sync divides CACHE_MB.
type CacheSplit struct {
	BlockCache int64 // Pebble's block cache
	UTXOCache  int64 // unspent outputs not yet spent or evicted
	Batch      int   // a catch-up's write batch; one more may be committing
}

// SplitCache divides mb MiB: half the block cache, a quarter the UTXO
// cache, an eighth each the batch being indexed and the one committing.
// amber build, amber serve's catch-up and the benchmarks share it, so a
// benchmark measures the configuration operators run.
func SplitCache(mb int) CacheSplit {
	b := int64(mb) << 20
	return CacheSplit{BlockCache: b / 2, UTXOCache: b / 4, Batch: int(b / 8)}
}
