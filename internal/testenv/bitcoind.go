package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
)

// BitcoindEnv names the environment variable that points at a bitcoind
// binary; without it the harness looks at SharedBitcoind, then PATH.
const BitcoindEnv = "BITCOIND"

// SharedBitcoind is where the project's Bitcoin Core build is found,
// relative to the repository root.
const SharedBitcoind = "../shared/bitcoin-core/bin/bitcoind"

// BitcoindHowTo says how to get a bitcoind, for the skip and failure
// messages.
const BitcoindHowTo = "build Bitcoin Core (v28 or later, with ZMQ) and set " + BitcoindEnv +
	"=/path/to/bitcoind, put it on PATH or at " + SharedBitcoind +
	" (its Debian runtime libraries: `make tools`)"

// FarTipAge is a -maxtipage that keeps Core out of initial block download
// on chains with old timestamps (generated chains, the 2009 mainnet blocks).
const FarTipAge = 1000000000

// coreNetworks maps a network name to bitcoind's flag, its data
// subdirectory and the chain parameters.
var coreNetworks = map[string]struct {
	flag, sub string
	params    *chaincfg.Params
}{
	"regtest":  {"-regtest", "regtest", &chaincfg.RegressionNetParams},
	"mainnet":  {"", "", &chaincfg.MainNetParams},
	"testnet":  {"-testnet", "testnet3", &chaincfg.TestNet3Params},
	"testnet4": {"-testnet4", "testnet4", &chaincfg.TestNet4Params},
	"signet":   {"-signet", "signet", &chaincfg.SigNetParams},
}

// BitcoindOptions configures StartBitcoind. The zero value runs an empty
// regtest chain without -txindex (Core's default), with REST, ZMQ and
// user/password authentication.
type BitcoindOptions struct {
	// Network is "regtest" (the default), "mainnet", "testnet",
	// "testnet4" or "signet". Whatever the network, bitcoind has no
	// peers, no DNS seeds and listens on loopback only.
	Network string
	// DataDir, when set, is used instead of a fresh temporary directory.
	DataDir string
	// TxIndex turns on -txindex.
	TxIndex bool
	// NoREST leaves -rest off.
	NoREST bool
	// OldTip sets -maxtipage=FarTipAge, so a chain with old timestamps
	// does not keep Core in initial block download.
	OldTip bool
	// Cookie leaves out -rpcuser/-rpcpassword: Core writes a fresh
	// cookie file (CookiePath) at every start.
	Cookie bool
	// LoadBlocks are block files (magic, length, block, as btcd's test
	// data) imported at start with -loadblock; Start waits until the
	// chain has reached LoadHeight.
	LoadBlocks []string
	// LoadHeight is the height the imported blocks reach.
	LoadHeight int32
	// Args are extra bitcoind arguments, appended last.
	Args []string
	// StartTimeout bounds the wait for the RPC server (and LoadBlocks);
	// zero means two minutes.
	StartTimeout time.Duration
}

// Bitcoind is a Bitcoin Core process started by StartBitcoind. Like Btcd,
// methods without an error result fail the test and belong to the test's
// goroutine; Call may be used from any goroutine.
type Bitcoind struct {
	// Params are the chain parameters of the network.
	Params *chaincfg.Params
	// Network is the network name ("regtest", "mainnet", ...).
	Network string
	// RPCHost is 127.0.0.1; RPCPort the JSON-RPC (and REST) port.
	RPCHost string
	RPCPort int
	// RPCUser and RPCPass are the credentials; empty with Cookie.
	RPCUser, RPCPass string
	// P2PPort is the loopback port bitcoind accepts peers on.
	P2PPort int
	// ZMQHashBlock and ZMQSequence are the tcp:// addresses of the
	// hashblock and sequence publishers.
	ZMQHashBlock, ZMQSequence string
	// Dir holds the configuration and the log; DataDir the chain.
	Dir, DataDir string
	// CookiePath is where Core writes its cookie (with Cookie set).
	CookiePath string
	// LogPath is the file bitcoind's output is appended to.
	LogPath string

	opts    BitcoindOptions
	t       testing.TB
	bin     string
	conf    string
	timeout time.Duration
	extra   []string // arguments for the next start only (-reindex)
	proc    *process
	httpc   *http.Client
}

// BitcoindPath returns the bitcoind to run: $BITCOIND, then
// SharedBitcoind from the repository root, then bitcoind on PATH.
func BitcoindPath() (string, error) {
	if p := os.Getenv(BitcoindEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BitcoindEnv, p, err)
		}
		return p, nil
	}
	if root, err := RepoRoot(); err == nil {
		p := filepath.Join(root, filepath.FromSlash(SharedBitcoind))
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("bitcoind"); err == nil {
		return p, nil
	}
	return "", errors.New("no bitcoind")
}

// RequireBitcoind returns the bitcoind to run. Without one the test is
// skipped with one loud line, or fails when CI=true.
func RequireBitcoind(t testing.TB) string {
	t.Helper()
	p, err := BitcoindPath()
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("######## SKIPPED %s: Bitcoin Core not found (%v); %s ########", t.Name(), err, BitcoindHowTo)
	if os.Getenv("CI") == "true" {
		t.Fatal(strings.Replace(msg, "SKIPPED", "FAILED (CI=true needs Bitcoin Core)", 1))
	}
	t.Skip(msg)
	return ""
}

// StartBitcoind starts Bitcoin Core on free loopback ports in a temporary
// directory and waits until its RPC server answers. It is stopped when the
// test ends, and the end of its log is shown if the test failed.
func StartBitcoind(t testing.TB, opts BitcoindOptions) *Bitcoind {
	t.Helper()
	bin := RequireBitcoind(t)
	if opts.Network == "" {
		opts.Network = "regtest"
	}
	opts.Network = strings.ToLower(opts.Network)
	network, ok := coreNetworks[opts.Network]
	if !ok {
		t.Fatalf("testenv: bitcoind has no network %q", opts.Network)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	dir := t.TempDir()
	c := &Bitcoind{
		Params:  network.params,
		Network: opts.Network,
		RPCHost: "127.0.0.1",
		Dir:     dir,
		DataDir: opts.DataDir,
		LogPath: filepath.Join(dir, "bitcoind.log"),
		opts:    opts,
		t:       t,
		bin:     bin,
		conf:    filepath.Join(dir, "bitcoin.conf"),
		timeout: timeout,
		httpc:   &http.Client{Timeout: 60 * time.Second},
	}
	if c.DataDir == "" {
		c.DataDir = filepath.Join(dir, "data")
	}
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	c.CookiePath = filepath.Join(c.DataDir, network.sub, ".cookie")
	// Credentials go in the configuration file, not on the command line
	// where ps shows them.
	var conf string
	if !opts.Cookie {
		c.RPCUser, c.RPCPass = "amber", randomHex(t, 16)
		conf = fmt.Sprintf("rpcuser=%s\nrpcpassword=%s\n", c.RPCUser, c.RPCPass)
	}
	if err := os.WriteFile(c.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}

	// Core logs every new tip; the tail shows the rest.
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(c.LogPath)
			var keep []string
			for _, l := range strings.Split(string(b), "\n") {
				if !strings.Contains(l, "UpdateTip: ") {
					keep = append(keep, l)
				}
			}
			t.Logf("last lines of the bitcoind log %s (UpdateTip lines left out):\n%s", c.LogPath, tailLines(strings.Join(keep, "\n"), logTailLines))
		}
	})
	t.Cleanup(c.cleanup)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(4); err != nil {
			t.Fatal(err)
		}
		c.RPCPort, c.P2PPort = ports[0], ports[1]
		c.ZMQHashBlock = "tcp://" + hostPort(c.RPCHost, ports[2])
		c.ZMQSequence = "tcp://" + hostPort(c.RPCHost, ports[3])
		var exited bool
		if exited, err = c.start(); err == nil || !exited {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: start bitcoind: %v", err)
	}
	if opts.LoadHeight > 0 {
		c.WaitHeight(opts.LoadHeight, timeout)
	}
	return c
}

// start launches bitcoind and waits for its RPC server. On error, exited
// tells whether it exited by itself, as it does when a port is taken.
func (c *Bitcoind) start() (exited bool, err error) {
	o := c.opts
	args := []string{
		"-conf=" + c.conf,
		"-datadir=" + c.DataDir,
		"-server",
		"-printtoconsole",
		"-rpcbind=" + c.RPCHost,
		"-rpcallowip=127.0.0.1",
		fmt.Sprintf("-rpcport=%d", c.RPCPort),
		"-rpcthreads=8",
		"-rpcworkqueue=256",
		"-connect=0",
		"-dnsseed=0",
		"-fixedseeds=0",
		"-listenonion=0",
		"-discover=0",
		"-natpmp=0",
		"-disablewallet",
		"-zmqpubhashblock=" + c.ZMQHashBlock,
		"-zmqpubsequence=" + c.ZMQSequence,
		"-debug=0",
	}
	if f := coreNetworks[c.Network].flag; f != "" {
		args = append(args, f)
	}
	if c.Network == "regtest" {
		// Let tests connect two nodes with addnode.
		args = append(args, "-listen=1", "-bind="+c.P2PAddr())
	} else {
		args = append(args, "-listen=0")
	}
	if !o.NoREST {
		args = append(args, "-rest")
	}
	if o.TxIndex {
		args = append(args, "-txindex")
	}
	if o.OldTip {
		// Leaving IBD also takes mainnet's minimum chain work, which
		// the early blocks are far from.
		args = append(args, fmt.Sprintf("-maxtipage=%d", FarTipAge), "-minimumchainwork=0")
	}
	for _, f := range o.LoadBlocks {
		args = append(args, "-loadblock="+f)
	}
	args = append(args, c.extra...)
	reindex := slices.Contains(c.extra, "-reindex")
	c.extra = nil
	args = append(args, o.Args...)
	env := filterEnv(os.Environ(), "HOME=")
	env = append(env, "HOME="+c.Dir)
	p, err := startProcess("bitcoind", c.bin, args, env, c.LogPath)
	if err != nil {
		return false, err
	}
	c.proc = p
	err = waitFor(p, c.timeout, func() error {
		// Ready once the saved mempool is back, as it was before a stop.
		var info struct {
			Loaded bool `json:"loaded"`
		}
		if err := c.CallInto(&info, "getmempoolinfo"); err != nil {
			return err
		}
		if !info.Loaded && !reindex {
			return errors.New("mempool not loaded yet")
		}
		return nil
	})
	if err != nil && !p.exited() {
		_ = p.kill()
		return false, err
	}
	return err != nil, err
}

func (c *Bitcoind) cleanup() {
	if c.proc == nil || c.proc.exited() {
		return
	}
	if err := c.proc.stop(stopTimeout); err != nil {
		c.t.Logf("testenv: stop bitcoind: %v", err)
	}
}

// RPCAddr returns the JSON-RPC server's host:port.
func (c *Bitcoind) RPCAddr() string { return hostPort(c.RPCHost, c.RPCPort) }

// URL returns the JSON-RPC URL in DAEMON_URL form: with the credentials,
// or, for a cookie-authenticated node, without a password.
func (c *Bitcoind) URL() string {
	if c.opts.Cookie {
		return "http://" + c.RPCAddr() + "/"
	}
	return fmt.Sprintf("http://%s:%s@%s/", c.RPCUser, c.RPCPass, c.RPCAddr())
}

// P2PAddr returns the loopback host:port for addnode.
func (c *Bitcoind) P2PAddr() string { return hostPort(c.RPCHost, c.P2PPort) }

// Pid returns the process id of the running (or last) bitcoind.
func (c *Bitcoind) Pid() int { return c.proc.pid() }

// Running reports whether bitcoind is alive.
func (c *Bitcoind) Running() bool { return c.proc != nil && !c.proc.exited() }

// Stop shuts bitcoind down (SIGTERM), killing it after 30 s, which fails
// the test.
func (c *Bitcoind) Stop() {
	c.t.Helper()
	if err := c.proc.stop(stopTimeout); err != nil {
		c.t.Fatal(err)
	}
}

// Kill ends bitcoind with SIGKILL and waits until it is gone.
func (c *Bitcoind) Kill() {
	c.t.Helper()
	if err := c.proc.kill(); err != nil {
		c.t.Fatal(err)
	}
}

// Restart stops bitcoind if it runs and starts it again with the same data
// directory, ports and credentials (a cookie node gets a new cookie). Core
// keeps its chain and, after a graceful stop, its mempool.
func (c *Bitcoind) Restart(extraArgs ...string) {
	c.t.Helper()
	if c.Running() {
		c.Stop()
	}
	c.extra = extraArgs
	if _, err := c.start(); err != nil {
		c.t.Fatalf("testenv: restart bitcoind: %v", err)
	}
}

// Reindex restarts bitcoind with -reindex: it wipes its chain state and
// rebuilds it from its block files, reporting a low height meanwhile.
// It returns as soon as RPC answers, before the rebuild is over.
func (c *Bitcoind) Reindex() {
	c.t.Helper()
	c.Restart("-reindex")
}

// Cookie returns the current cookie file's user:password.
func (c *Bitcoind) Cookie() (user, pass string, err error) {
	b, err := os.ReadFile(c.CookiePath)
	if err != nil {
		return "", "", err
	}
	u, p, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return "", "", fmt.Errorf("testenv: cookie %s has no ':'", c.CookiePath)
	}
	return u, p, nil
}

// Call makes one JSON-RPC request and returns the raw result; an error
// reply is a *btcjson.RPCError. It does not retry.
func (c *Bitcoind) Call(method string, params ...any) (json.RawMessage, error) {
	user, pass := c.RPCUser, c.RPCPass
	if c.opts.Cookie {
		var err error
		if user, pass, err = c.Cookie(); err != nil {
			return nil, fmt.Errorf("testenv: %s: %w", method, err)
		}
	}
	return jsonRPC(c.httpc, c.RPCAddr(), user, pass, method, params)
}

// CallInto makes a Call and decodes its result into v.
func (c *Bitcoind) CallInto(v any, method string, params ...any) error {
	raw, err := c.Call(method, params...)
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("testenv: %s: decode result: %w", method, err)
	}
	return nil
}

// MustCall is CallInto that fails the test on error.
func (c *Bitcoind) MustCall(v any, method string, params ...any) {
	c.t.Helper()
	if err := c.CallInto(v, method, params...); err != nil {
		c.t.Fatalf("testenv: bitcoind %s: %v", method, err)
	}
}

// Generate mines n blocks paying to addr (generatetoaddress; regtest
// only) and returns their hashes.
func (c *Bitcoind) Generate(n int, addr string) []chainhash.Hash {
	c.t.Helper()
	var hexes []string
	c.MustCall(&hexes, "generatetoaddress", n, addr)
	out := make([]chainhash.Hash, len(hexes))
	for i, s := range hexes {
		h, err := chainhash.NewHashFromStr(s)
		if err != nil {
			c.t.Fatal(err)
		}
		out[i] = *h
	}
	return out
}

// SubmitBlock submits a raw block (hex) and fails the test if Core
// rejects it.
func (c *Bitcoind) SubmitBlock(rawHex string) {
	c.t.Helper()
	var reject *string
	c.MustCall(&reject, "submitblock", rawHex)
	if reject != nil && *reject != "duplicate" {
		c.t.Fatalf("testenv: bitcoind rejected a block: %s", *reject)
	}
}

// Height returns the height of Core's best block.
func (c *Bitcoind) Height() int32 {
	c.t.Helper()
	var n int32
	c.MustCall(&n, "getblockcount")
	return n
}

// BestHash returns the hash of Core's best block.
func (c *Bitcoind) BestHash() chainhash.Hash {
	c.t.Helper()
	var s string
	c.MustCall(&s, "getbestblockhash")
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		c.t.Fatal(err)
	}
	return *h
}

// InIBD reports Core's initialblockdownload flag.
func (c *Bitcoind) InIBD() bool {
	c.t.Helper()
	var info struct {
		IBD bool `json:"initialblockdownload"`
	}
	c.MustCall(&info, "getblockchaininfo")
	return info.IBD
}

// WaitHeight waits until Core's best block is at least height.
func (c *Bitcoind) WaitHeight(height int32, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var n int32
		err := c.CallInto(&n, "getblockcount")
		if err == nil && n >= height {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testenv: bitcoind at height %d after %v, want %d (%v)", n, timeout, height, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MainnetBlocksFile returns btcd's test file of the real mainnet blocks 0
// to 14,131 (block-file format), for LoadBlocks.
func MainnetBlocksFile(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/btcsuite/btcd").Output()
	if err != nil {
		t.Fatalf("testenv: locate the btcd module: %v", err)
	}
	p := filepath.Join(strings.TrimSpace(string(out)), "blockchain", "testdata", "blk_0_to_14131.dat")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// MainnetBlocksTip is the height of the last block in MainnetBlocksFile.
const MainnetBlocksTip = 14131

// Credentials returns the JSON-RPC user and password: the configured
// ones, or the current cookie's.
func (c *Bitcoind) Credentials() (user, pass string) {
	if c.opts.Cookie {
		user, pass, _ = c.Cookie()
		return user, pass
	}
	return c.RPCUser, c.RPCPass
}

// Node is what btcd and Bitcoin Core both offer a test: raw JSON-RPC calls,
// the address and the credentials.
type Node interface {
	Call(method string, params ...any) (json.RawMessage, error)
	RPCAddr() string
	URL() string
	Credentials() (user, pass string)
}

var (
	_ Node = (*Btcd)(nil)
	_ Node = (*Bitcoind)(nil)
)
