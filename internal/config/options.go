package config

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"amber/internal/chain"
)

// option is one setting: a flag, its environment variable, a default, the
// commands that read it and how its value is parsed into a Config.
type option struct {
	env     string
	flagAs  string // flag name when it is not derived from env
	boolean bool   // the flag may be given bare (--once)
	def     string
	defNote string // shown in usage when the default depends on other settings
	group   string
	usage   string
	cmds    []Command
	parse   func(c *Config, v string) error
}

var (
	all       = []Command{Build, Serve, Snapshot, RPC, Demo}
	chainCmds = []Command{Build, Serve, Snapshot, Demo}
	syncCmds  = []Command{Build, Serve}
	dbCmds    = []Command{Build, Serve, Snapshot}
	snapCmds  = []Command{Build, Serve, Snapshot}
	srvCmds   = []Command{Serve}
	httpCmds  = []Command{Build, Serve, Demo}
)

// options is ordered: COIN and NET come first because later defaults
// (ports, REORG_LIMIT) depend on the network.
var options = []option{
	{env: "COIN", def: "Bitcoin", group: "Chain", cmds: chainCmds,
		usage: "coin name (" + strings.Join(chain.CoinNames(), ", ") + ")",
		parse: func(c *Config, v string) error {
			if _, err := chain.Lookup(v, ""); err != nil && strings.Contains(err.Error(), "unknown coin") {
				return fmt.Errorf("unknown coin; want one of %s", strings.Join(chain.CoinNames(), ", "))
			}
			c.Coin = v
			return nil
		}},
	{env: "NET", def: "mainnet", group: "Chain", cmds: chainCmds,
		usage: "network: mainnet, testnet, testnet4, signet or regtest",
		parse: func(c *Config, v string) error {
			n, err := chain.Lookup(c.Coin, v)
			if err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), "chain: "))
			}
			c.Network = n
			return nil
		}},

	{env: "DAEMON_URL", group: "Daemon", cmds: syncCmds,
		usage: "daemon JSON-RPC URLs, comma-separated for round-robin failover: http://user:pass@host:port/ (scheme and port optional)",
		parse: func(c *Config, v string) (err error) { c.DaemonURLs, err = ParseDaemonURLs(v); return err }},
	{env: "DAEMON_COOKIE_FILE", defNote: "Bitcoin Core's: ~/.bitcoin/.cookie on mainnet, ~/.bitcoin/<testnet3|testnet4|signet|regtest>/.cookie", group: "Daemon", cmds: syncCmds,
		usage: "bitcoind cookie file, used for DAEMON_URLs without a password; read again after every 401 (bitcoind writes a new one each start)",
		parse: func(c *Config, v string) error {
			if v == "" {
				v = DefaultCookieFile(c.Network)
			}
			c.DaemonCookieFile = v
			return nil
		}},
	{env: "DAEMON_RETRY_MAX", def: "4s", group: "Daemon", cmds: syncCmds,
		usage: "longest wait between retries of a failing daemon (the backoff doubles from 250ms); a failure after this wait fails over to the next DAEMON_URL",
		parse: durationField(func(c *Config) *time.Duration { return &c.DaemonRetryMax }, time.Second)},
	{env: "DAEMON_POLL_INTERVAL", def: "1s", group: "Daemon", cmds: syncCmds,
		usage: "how often to ask the daemon for a new tip and mempool",
		parse: durationField(func(c *Config) *time.Duration { return &c.DaemonPollInterval }, time.Millisecond)},
	{env: "DAEMON_BLOCKS_DIR", def: "auto", group: "Daemon", cmds: syncCmds,
		usage: "Bitcoin Core's blocks directory, read directly during a sync instead of asking for each block over REST (a block the files lack still comes from the daemon); auto: the one getrpcinfo's log path points to, for a daemon on this host; off: never",
		parse: func(c *Config, v string) error {
			if v == "auto" {
				v = ""
			}
			c.DaemonBlocksDir = v
			return nil
		}},

	{env: "ZMQ_HASHBLOCK", group: "Daemon", cmds: syncCmds,
		usage: "bitcoind zmqpubhashblock endpoint (tcp://host:port): react to new blocks at once; polling stays the fallback",
		parse: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "tcp://") && !strings.HasPrefix(v, "ipc://") {
				return errors.New("want tcp://host:port or ipc:///path, as bitcoind's zmqpubhashblock")
			}
			c.ZMQHashBlock = v
			return nil
		}},

	{env: "ZMQ_SEQUENCE", group: "Daemon", cmds: syncCmds,
		usage: "bitcoind zmqpubsequence endpoint (tcp://host:port): refresh the mempool view at each transaction added or removed; polling stays the fallback",
		parse: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "tcp://") && !strings.HasPrefix(v, "ipc://") {
				return errors.New("want tcp://host:port or ipc:///path, as bitcoind's zmqpubsequence")
			}
			c.ZMQSequence = v
			return nil
		}},

	{env: "BUILD_ONCE", flagAs: "once", boolean: true, def: "off", group: "Builder", cmds: []Command{Build},
		usage: "sync to the daemon's tip (and publish), then exit instead of following the tip",
		parse: boolField(func(c *Config) *bool { return &c.Once })},
	{env: "BUILD_VERIFY", flagAs: "verify", boolean: true, def: "off", group: "Builder", cmds: []Command{Build},
		usage: "after syncing, count the UTXO set from the index and compare it with the daemon's gettxoutsetinfo where it has one",
		parse: boolField(func(c *Config) *bool { return &c.Verify })},

	{env: "DB_DIRECTORY", group: "Storage", cmds: dbCmds,
		usage: "directory of the Pebble index",
		parse: func(c *Config, v string) error { c.DBDirectory = v; return nil }},
	{env: "REORG_LIMIT", defNote: "200 on mainnet, 8000 on test networks", group: "Storage", cmds: syncCmds,
		usage: "deepest reorg handled; undo data is kept for this many blocks",
		parse: func(c *Config, v string) error {
			if v == "" {
				c.ReorgLimit = c.Network.ReorgLimit
				return nil
			}
			return intField(func(c *Config) *int { return &c.ReorgLimit }, 1, 1_000_000)(c, v)
		}},
	{env: "CACHE_MB", def: strconv.Itoa(DefaultCacheMB), group: "Storage", cmds: syncCmds,
		usage: "memory budget in MiB during sync: half block cache, a quarter UTXO cache, the rest write batches",
		parse: intField(func(c *Config) *int { return &c.CacheMB }, 16, 1<<20)},

	{env: "SNAPSHOT_URL", group: "Snapshots", cmds: snapCmds,
		usage: "snapshot bucket: a local path, file:///dir, s3://bucket/prefix or minio://host:port/bucket/prefix",
		parse: func(c *Config, v string) error { c.SnapshotURL = v; return validSnapshotURL(v) }},

	{env: "SNAPSHOT_SIGNING_KEY_FILE", group: "Snapshots", cmds: []Command{Build, Snapshot},
		usage: "file holding the hex ed25519 seed that signs published manifests (amber snapshot keygen makes one)",
		parse: func(c *Config, v string) error { c.SigningKeyFile = v; return nil }},
	{env: "SNAPSHOT_TRUSTED_KEYS", group: "Snapshots", cmds: snapCmds,
		usage: "comma-separated hex ed25519 public keys; when set, only manifests signed by one of them are used",
		parse: func(c *Config, v string) error {
			for _, part := range strings.Split(v, ",") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				b, err := hex.DecodeString(part)
				if err != nil || len(b) != ed25519.PublicKeySize {
					return fmt.Errorf("%q is not a key; want 64 hex digits per ed25519 public key", part)
				}
				c.TrustedKeys = append(c.TrustedKeys, ed25519.PublicKey(b))
			}
			return nil
		}},
	{env: "SNAPSHOT_MAX_BEHIND", def: "1000", group: "Snapshots", cmds: syncCmds,
		usage: "a local DB more than this many blocks behind the newest trusted snapshot is replaced by it (downloaded beside it, verified, swapped); 0 keeps any local DB of this schema",
		parse: intField(func(c *Config) *int { return &c.SnapshotMaxBehind }, 0, 100_000_000)},
	{env: "SNAPSHOT_INTERVAL", def: "1h", group: "Snapshots", cmds: []Command{Build},
		usage: "how often a following builder publishes a snapshot: a duration (30m) or a block count (144 blocks)",
		parse: func(c *Config, v string) error {
			if n, ok := strings.CutSuffix(strings.TrimSpace(v), "blocks"); ok {
				blocks, err := strconv.Atoi(strings.TrimSpace(n))
				if err != nil || blocks < 1 {
					return errors.New("want a duration such as 30m or a block count such as 144 blocks")
				}
				c.SnapshotEveryBlocks = blocks
				return nil
			}
			return durationField(func(c *Config) *time.Duration { return &c.SnapshotInterval }, time.Second)(c, v)
		}},

	{env: "SNAPSHOT_GC_GRACE", def: "1h", group: "Snapshots", cmds: []Command{Build, Snapshot},
		usage: "retention deletes a data file no kept snapshot needs once two passes this far apart saw it unneeded; longer than any publish",
		parse: func(c *Config, v string) error {
			if err := durationField(func(c *Config) *time.Duration { return &c.SnapshotGCGrace }, time.Second)(c, v); err != nil {
				return err
			}
			if c.SnapshotGCGrace <= 0 {
				return errors.New("want a positive duration such as 1h")
			}
			return nil
		}},

	{env: "SERVICES", group: "Listeners", cmds: srvCmds,
		usage: "comma-separated listeners: tcp://host:port, ssl://, ws://, wss://, rpc:// (admin, default localhost:8000)",
		parse: func(c *Config, v string) (err error) { c.Services, err = ParseServices(v, false); return err }},
	{env: "REPORT_SERVICES", group: "Listeners", cmds: srvCmds,
		usage: "services advertised to peers and clients: tcp://, ssl://, ws://, wss:// with public host names",
		parse: func(c *Config, v string) (err error) { c.ReportServices, err = ParseServices(v, true); return err }},
	{env: "SSL_CERTFILE", group: "Listeners", cmds: srvCmds,
		usage: "PEM certificate chain for ssl:// and wss:// (reloaded on SIGHUP)",
		parse: func(c *Config, v string) error { c.SSLCertFile = v; return nil }},
	{env: "SSL_KEYFILE", group: "Listeners", cmds: srvCmds,
		usage: "PEM private key for ssl:// and wss://",
		parse: func(c *Config, v string) error { c.SSLKeyFile = v; return nil }},
	{env: "PPROF", boolean: true, def: "off", group: "Listeners", cmds: httpCmds,
		usage: "also serve Go's /debug/pprof/ profiles on HTTP_ADDR (keep HTTP_ADDR private then)",
		parse: boolField(func(c *Config) *bool { return &c.Pprof })},
	{env: "HTTP_ADDR", def: "127.0.0.1:8080", group: "Listeners", cmds: httpCmds,
		usage: "host:port for /metrics, /healthz, /readyz and the status page; off disables",
		parse: func(c *Config, v string) error {
			if strings.EqualFold(v, "off") || v == "" {
				c.HTTPAddr = ""
				return nil
			}
			{
				if _, _, err := splitHostPort(v); err != nil {
					return fmt.Errorf("%v; want host:port such as 127.0.0.1:8080", err)
				}
			}
			c.HTTPAddr = v
			return nil
		}},

	{env: "DONATION_ADDRESS", group: "Server", cmds: srvCmds,
		usage: "address returned by server.donation_address",
		parse: func(c *Config, v string) error { c.DonationAddress = v; return nil }},
	{env: "BANNER_FILE", group: "Server", cmds: srvCmds,
		usage: "file whose text server.banner returns",
		parse: func(c *Config, v string) error { c.BannerFile = v; return nil }},

	{env: "MAX_SESSIONS", def: "1000", group: "Resource controls", cmds: srvCmds,
		usage: "most client sessions at once",
		parse: intField(func(c *Config) *int { return &c.MaxSessions }, 1, 10_000_000)},
	{env: "MAX_RECV", def: "1000000", group: "Resource controls", cmds: srvCmds,
		usage: "largest request in bytes",
		parse: intField(func(c *Config) *int { return &c.MaxRecv }, 1000, 1<<30)},
	{env: "MAX_SEND", def: "8100000", group: "Resource controls", cmds: srvCmds,
		usage: "largest response in bytes (at least 350000)",
		parse: func(c *Config, v string) error {
			if err := intField(func(c *Config) *int { return &c.MaxSend }, 1, 1<<30)(c, v); err != nil {
				return err
			}
			c.MaxSend = max(c.MaxSend, 350_000)
			return nil
		}},
	{env: "COST_SOFT_LIMIT", def: "1000", group: "Resource controls", cmds: srvCmds,
		usage: "session cost at which throttling starts (0 with COST_HARD_LIMIT 0 disables)",
		parse: floatField(func(c *Config) *float64 { return &c.CostSoftLimit })},
	{env: "COST_HARD_LIMIT", def: "10000", group: "Resource controls", cmds: srvCmds,
		usage: "session cost at which the session is disconnected",
		parse: floatField(func(c *Config) *float64 { return &c.CostHardLimit })},
	{env: "REQUEST_SLEEP", def: "2500", group: "Resource controls", cmds: srvCmds,
		usage: "longest delay in milliseconds given to a request at the hard limit",
		parse: durationField(func(c *Config) *time.Duration { return &c.RequestSleep }, time.Millisecond)},
	{env: "INITIAL_CONCURRENT", def: "10", group: "Resource controls", cmds: srvCmds,
		usage: "concurrent requests per session before throttling",
		parse: intField(func(c *Config) *int { return &c.InitialConcurrent }, 1, 10_000)},
	{env: "BANDWIDTH_UNIT_COST", def: "5000", group: "Resource controls", cmds: srvCmds,
		usage: "bytes sent or received that cost 1.0",
		parse: intField(func(c *Config) *int { return &c.BandwidthUnitCost }, 1, 1<<30)},
	{env: "SESSION_GROUP_BY_SUBNET_IPV4", def: "24", group: "Resource controls", cmds: srvCmds,
		usage: "IPv4 prefix length of the subnets that share a cost budget",
		parse: intField(func(c *Config) *int { return &c.SubnetIPv4 }, 0, 32)},
	{env: "SESSION_GROUP_BY_SUBNET_IPV6", def: "48", group: "Resource controls", cmds: srvCmds,
		usage: "IPv6 prefix length of the subnets that share a cost budget",
		parse: intField(func(c *Config) *int { return &c.SubnetIPv6 }, 0, 128)},
	{env: "SESSION_GROUP_PRIVATE", boolean: true, group: "Resource controls", cmds: srvCmds,
		usage: "on: group loopback and private client addresses by subnet too (ElectrumX exempts them); for wallets that reach the node from a private network",
		parse: boolField(func(c *Config) *bool { return &c.GroupPrivate })},
	{env: "REQUEST_TIMEOUT", def: "30", group: "Resource controls", cmds: srvCmds,
		usage: "seconds a request may take before it is answered with 'server busy'",
		parse: durationField(func(c *Config) *time.Duration { return &c.RequestTimeout }, time.Second)},
	{env: "SESSION_TIMEOUT", def: "600", group: "Resource controls", cmds: srvCmds,
		usage: "seconds of silence after which a session is closed",
		parse: durationField(func(c *Config) *time.Duration { return &c.SessionTimeout }, time.Second)},
	{env: "DROP_CLIENT", group: "Resource controls", cmds: srvCmds,
		usage: "regular expression; clients whose server.version name matches it are disconnected",
		parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			re, err := regexp.Compile("^(?:" + v + ")")
			if err != nil {
				return fmt.Errorf("not a regular expression: %v", err)
			}
			c.DropClient = re
			return nil
		}},

	{env: "DROP_CLIENT_UNKNOWN", boolean: true, group: "Resource controls", cmds: srvCmds,
		usage: "disconnect clients that send an empty client name in server.version (server.version first is always required)",
		parse: boolField(func(c *Config) *bool { return &c.DropClientUnknown })},
	{env: "COST_DECAY_PER_SEC", defNote: "COST_HARD_LIMIT/10000", group: "Resource controls", cmds: srvCmds,
		usage: "cost a session sheds per second (subscriptions slow it, as in ElectrumX)",
		parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			return floatField(func(c *Config) *float64 { return &c.CostDecayPerSec })(c, v)
		}},
	{env: "MAX_SESSION_SUBS", def: "50000", group: "Resource controls", cmds: srvCmds,
		usage: "most script and outpoint subscriptions one session may hold",
		parse: intField(func(c *Config) *int { return &c.MaxSessionSubs }, 1, 1<<30)},
	{env: "MAX_SUBS", def: "1000000", group: "Resource controls", cmds: srvCmds,
		usage: "most script and outpoint subscriptions over all sessions",
		parse: intField(func(c *Config) *int { return &c.MaxSubs }, 1, 1<<30)},
	{env: "BAN_LIST", group: "Resource controls", cmds: srvCmds,
		usage: "comma-separated addresses or CIDR prefixes refused at connect (amber rpc ban/unban change it at run time)",
		parse: prefixList(func(c *Config) *[]netip.Prefix { return &c.BanList })},
	{env: "PROXY_PROTOCOL", boolean: true, group: "Resource controls", cmds: srvCmds,
		usage: "read a PROXY protocol v1 or v2 header on every listener from PROXY_TRUSTED sources, so limits and logs see the real client",
		parse: boolField(func(c *Config) *bool { return &c.ProxyProtocol })},
	{env: "PROXY_TRUSTED", def: "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7", group: "Resource controls", cmds: srvCmds,
		usage: "comma-separated CIDR prefixes of the load balancers whose PROXY headers are believed",
		parse: prefixList(func(c *Config) *[]netip.Prefix { return &c.ProxyTrusted })},
	{env: "READY_MAX_LAG", def: "2", group: "Readiness and shutdown", cmds: []Command{Serve},
		usage: "blocks the index may trail the daemon's tip while /readyz stays green",
		parse: intField(func(c *Config) *int { return &c.ReadyMaxLag }, 0, 1_000_000)},
	{env: "DRAIN_DELAY", def: "5", group: "Readiness and shutdown", cmds: []Command{Serve},
		usage: "seconds between SIGTERM (listeners closed, /readyz red) and closing sessions, so load balancers notice",
		parse: durationField(func(c *Config) *time.Duration { return &c.DrainDelay }, time.Second)},
	{env: "SHUTDOWN_GRACE", def: "10", group: "Readiness and shutdown", cmds: []Command{Serve},
		usage: "seconds sessions get to finish their requests after the drain delay before they are closed",
		parse: durationField(func(c *Config) *time.Duration { return &c.ShutdownGrace }, time.Second)},

	{env: "PEER_DISCOVERY", def: "on", group: "Peers", cmds: srvCmds,
		usage: "on (discover and verify peers), self (verify and list only our own REPORT_SERVICES) or off",
		parse: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "on", "self", "off":
				c.PeerDiscovery = strings.ToLower(v)
				return nil
			}
			return errors.New("want on, self or off")
		}},
	{env: "PEER_ANNOUNCE", def: "on", boolean: true, group: "Peers", cmds: srvCmds,
		usage: "announce ourselves to verified peers (on or off)",
		parse: boolField(func(c *Config) *bool { return &c.PeerAnnounce })},
	{env: "PEER_SEEDS", defNote: "the network's built-in list", group: "Peers", cmds: srvCmds,
		usage: "comma-separated peers to start discovery from, replacing the built-in list: host [s[port]] [t[port]] (s is TLS, t is TCP; a bare letter means the network's default port)",
		parse: func(c *Config, v string) error {
			c.PeerSeeds = nil
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					c.PeerSeeds = append(c.PeerSeeds, part)
				}
			}
			return nil
		}},
	{env: "PEER_ALLOW_PRIVATE", def: "off", boolean: true, group: "Peers", cmds: srvCmds,
		usage: "accept peers at private and loopback addresses, several on one address told apart by port (private clusters and test networks)",
		parse: boolField(func(c *Config) *bool { return &c.PeerAllowPrivate })},
	{env: "PEER_VERIFY_INTERVAL", def: "3h", group: "Peers", cmds: srvCmds,
		usage: "a verified peer is listed this long and verified again before it runs out",
		parse: func(c *Config, v string) error {
			if err := durationField(func(c *Config) *time.Duration { return &c.PeerVerifyInterval }, time.Second)(c, v); err != nil {
				return err
			}
			if c.PeerVerifyInterval < 100*time.Millisecond {
				return errors.New("want at least 100ms")
			}
			return nil
		}},
	{env: "PEER_RETRY_INTERVAL", def: "300", group: "Peers", cmds: srvCmds,
		usage: "seconds before a failed peer is tried again; doubled after each further failure",
		parse: func(c *Config, v string) error {
			if err := durationField(func(c *Config) *time.Duration { return &c.PeerRetryInterval }, time.Second)(c, v); err != nil {
				return err
			}
			if c.PeerRetryInterval < 10*time.Millisecond {
				return errors.New("want at least 10ms")
			}
			return nil
		}},
	{env: "TOR_PROXY_HOST", def: "localhost", group: "Peers", cmds: srvCmds,
		usage: "SOCKS5 proxy host for .onion peers (without TOR_PROXY_PORT, ports 9050, 9150 and 1080 are tried)",
		parse: func(c *Config, v string) error { c.TorProxyHost = v; return nil }},
	{env: "TOR_PROXY_PORT", defNote: "none", group: "Peers", cmds: srvCmds,
		usage: "SOCKS5 proxy port; when set, all peers are reached through the proxy",
		parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			return intField(func(c *Config) *int { return &c.TorProxyPort }, 1, 65535)(c, v)
		}},

	{env: "BLACKLIST_URL", defNote: "none", group: "Peers", cmds: srvCmds,
		usage: "http(s) URL of a JSON list of peers never to use or list: host names, *.domain, or IP addresses; fetched every 10 minutes",
		parse: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errors.New("want an http:// or https:// URL")
			}
			c.BlacklistURL = v
			return nil
		}},

	{env: "RPC_ADDR", def: "127.0.0.1:8000", group: "Admin", cmds: []Command{RPC},
		usage: "host:port of the server's rpc:// listener",
		parse: func(c *Config, v string) error {
			if _, _, err := splitHostPort(v); err != nil {
				return fmt.Errorf("%v; want host:port such as 127.0.0.1:8000", err)
			}
			c.RPCAddr = v
			return nil
		}},

	{env: "DEMO_DIR", group: "Demo", cmds: []Command{Demo},
		usage: "directory for the demo's btcd, indexes, bucket and certificate, kept for the next run; empty means a temporary directory removed on exit",
		parse: func(c *Config, v string) error { c.DemoDir = v; return nil }},
	{env: "DEMO_BLOCK_INTERVAL", def: "30s", group: "Demo", cmds: []Command{Demo},
		usage: "how often the demo mines a block (with a few payments)",
		parse: durationField(func(c *Config) *time.Duration { return &c.DemoBlockInterval }, time.Second)},
	{env: "DEMO_PORT", def: "50001", group: "Demo", cmds: []Command{Demo},
		usage: "the demo server's TCP port; TLS, WS and WSS take the next three",
		parse: intField(func(c *Config) *int { return &c.DemoPort }, 1, 65532)},

	{env: "LOG_LEVEL", def: "info", group: "Logging", cmds: all,
		usage: "debug, info, warn or error",
		parse: func(c *Config, v string) error {
			if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
				return errors.New("want debug, info, warn or error")
			}
			return nil
		}},
	{env: "LOG_FORMAT", def: "text", group: "Logging", cmds: all,
		usage: "text (for terminals) or json (for log collectors)",
		parse: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "text", "json":
				c.LogFormat = strings.ToLower(v)
				return nil
			}
			return errors.New("want text or json")
		}},
}

func intField(f func(*Config) *int, lo, hi int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("want a whole number from %d to %d", lo, hi)
		}
		*f(c) = n
		return nil
	}
}

// prefixList parses "10.0.0.0/8, 2001:db8::1": bare addresses become
// single-address prefixes.
func prefixList(f func(*Config) *[]netip.Prefix) func(*Config, string) error {
	return func(c *Config, v string) error {
		var out []netip.Prefix
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if p, err := netip.ParsePrefix(item); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(item)
			if err != nil {
				return fmt.Errorf("%q is neither an address nor a CIDR prefix such as 10.0.0.0/8", item)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
		*f(c) = out
		return nil
	}
}

func floatField(f func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || x < 0 {
			return errors.New("want a number 0 or more")
		}
		*f(c) = x
		return nil
	}
}

// durationField accepts a Go duration ("1.5s") or a bare number in unit,
// so ElectrumX's numeric values keep their meaning.
func durationField(f func(*Config) *time.Duration, unit time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if x, err := strconv.ParseFloat(v, 64); err == nil && x >= 0 {
			*f(c) = time.Duration(x * float64(unit))
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 1.5s or 500ms, or a number of %s", unitName(unit))
		}
		*f(c) = d
		return nil
	}
}

func unitName(d time.Duration) string {
	if d == time.Millisecond {
		return "milliseconds"
	}
	return "seconds"
}

func boolField(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "on", "true", "yes":
			*f(c) = true
		case "", "0", "off", "false", "no":
			*f(c) = false
		default:
			return errors.New("want on or off")
		}
		return nil
	}
}

func splitHostPort(v string) (string, int, error) {
	host, p, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

func validSnapshotURL(v string) error {
	if v == "" || !strings.Contains(v, "://") {
		return nil // a plain path means a local directory
	}
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch u.Scheme {
	case "file":
		if u.Path == "" {
			return errors.New("file:// needs a path; want file:///var/lib/amber/snapshots")
		}
	case "s3":
		if u.Host == "" {
			return errors.New("s3:// needs a bucket; want s3://bucket/prefix")
		}
	case "minio":
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return errors.New("minio:// needs an endpoint and a bucket; want minio://host:port/bucket/prefix")
		}
	default:
		return fmt.Errorf("unknown scheme %q; want a path, file://, s3:// or minio://", u.Scheme)
	}
	return nil
}
