package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/rpcclient"
)

// btcdNetwork maps a network name to btcd's flag and chain parameters.
type btcdNetwork struct {
	flag   string // empty for mainnet
	params *chaincfg.Params
}

var btcdNetworks = map[string]btcdNetwork{
	"regtest":  {"--regtest", &chaincfg.RegressionNetParams},
	"mainnet":  {"", &chaincfg.MainNetParams},
	"testnet":  {"--testnet", &chaincfg.TestNet3Params},
	"testnet3": {"--testnet", &chaincfg.TestNet3Params},
	"testnet4": {"--testnet4", &chaincfg.TestNet4Params},
	"signet":   {"--signet", &chaincfg.SigNetParams},
	"simnet":   {"--simnet", &chaincfg.SimNetParams},
}

// BtcdOptions configures StartBtcd. The zero value runs an empty regtest
// chain with a transaction index.
type BtcdOptions struct {
	// Network is the chain to run: "regtest" (the default), "mainnet",
	// "testnet", "testnet4", "signet" or "simnet". Whatever the network,
	// btcd has no peers and listens on loopback only.
	Network string
	// MiningAddr is the address that `generate` pays block rewards to
	// (btcd's --miningaddr, fixed for the life of the process). Without
	// it btcd refuses to generate blocks.
	MiningAddr string
	// DataDir, when set, is used as btcd's data directory instead of a
	// fresh temporary one, for tests that start from a prepared chain.
	DataDir string
	// NoTxIndex turns off the transaction index (--txindex), which is on
	// by default so getrawtransaction finds confirmed transactions.
	NoTxIndex bool
	// Args are extra btcd command-line arguments, appended last.
	Args []string
	// StartTimeout bounds the wait for the RPC server to answer; zero
	// means one minute.
	StartTimeout time.Duration
}

// Btcd is a btcd process started by StartBtcd. Its methods that take no
// error result fail the test on error and must be called from the test's
// goroutine; the Client and Call may be used from any goroutine.
type Btcd struct {
	// Params are the chain parameters of the network btcd runs.
	Params *chaincfg.Params
	// RPCHost is the address the JSON-RPC server listens on (127.0.0.1).
	RPCHost string
	// RPCPort is the JSON-RPC server's port.
	RPCPort int
	// RPCUser and RPCPass are the JSON-RPC credentials.
	RPCUser, RPCPass string
	// P2PPort is the loopback port btcd accepts peers on. It has no peers
	// of its own; another node may be connected with the addnode RPC.
	P2PPort int
	// Dir is the temporary directory holding the configuration, home
	// directory, logs and (unless BtcdOptions.DataDir was set) data.
	Dir string
	// DataDir is btcd's data directory; Restart keeps it.
	DataDir string
	// LogPath is the file btcd's standard output and error are appended
	// to, across restarts.
	LogPath string
	// Client is a btcd rpcclient in HTTP POST mode, valid across Restart.
	//
	// NOTE: rpcclient retries a request that cannot connect ten times
	// with growing pauses (about 25 s in all), so a call made while btcd
	// is stopped is slow to fail; Call fails at once.
	Client *rpcclient.Client

	t        testing.TB
	bin      string
	args     []string
	env      []string
	timeout  time.Duration
	userArgs []string
	proc     *process
	// savedBlocks holds a stopped regtest chain until Restart replays it.
	savedBlocks []string
	httpc       *http.Client
}

// StartBtcd installs btcd if needed, starts it on free loopback ports in a
// temporary directory and waits until its RPC server answers. The process
// is stopped when the test ends, and the end of its log is shown if the
// test failed.
func StartBtcd(t testing.TB, opts BtcdOptions) *Btcd {
	t.Helper()
	bin := mustTool(t, "btcd")

	netName := opts.Network
	if netName == "" {
		netName = "regtest"
	}
	network, ok := btcdNetworks[strings.ToLower(netName)]
	if !ok {
		t.Fatalf("testenv: btcd has no network %q", netName)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = time.Minute
	}

	dir := t.TempDir()
	b := &Btcd{
		Params:   network.params,
		RPCHost:  "127.0.0.1",
		RPCUser:  "amber",
		RPCPass:  randomHex(t, 16),
		Dir:      dir,
		DataDir:  opts.DataDir,
		LogPath:  filepath.Join(dir, "btcd.log"),
		t:        t,
		bin:      bin,
		userArgs: opts.Args,
		timeout:  timeout,
		httpc:    &http.Client{Timeout: 30 * time.Second},
	}
	if b.DataDir == "" {
		b.DataDir = filepath.Join(dir, "data")
	}
	home := filepath.Join(dir, "home")
	conf := filepath.Join(dir, "btcd.conf")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// An explicit, empty configuration file keeps btcd from reading or
	// creating one in the real home directory.
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// btcd creates ~/.btcd even when told to use other paths.
	b.env = append(filterEnv(os.Environ(), "HOME="), "HOME="+home)

	b.args = []string{
		"--configfile=" + conf,
		"--datadir=" + b.DataDir,
		"--logdir=" + filepath.Join(dir, "logs"),
		"--rpcuser=" + b.RPCUser,
		"--rpcpass=" + b.RPCPass,
		"--notls",
		"--nodnsseed",
		"--rpcmaxclients=100",
		// Every mined block is logged at info level; that would drown
		// the rest of the log.
		"--debuglevel=MINR=warn",
	}
	if network.flag != "" {
		b.args = append(b.args, network.flag)
	}
	if !opts.NoTxIndex {
		b.args = append(b.args, "--txindex")
	}
	if opts.MiningAddr != "" {
		b.args = append(b.args, "--miningaddr="+opts.MiningAddr)
	}

	logTailOnFailure(t, "btcd", b.LogPath)
	t.Cleanup(b.cleanup)

	// A port found free can be taken by another process before btcd binds
	// it; btcd then exits, and a new set of ports is tried.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var ports []int
		if ports, err = freePorts(2); err != nil {
			t.Fatal(err)
		}
		b.RPCPort, b.P2PPort = ports[0], ports[1]
		var exited bool
		if exited, err = b.start(); err == nil || !exited {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: start btcd: %v", err)
	}

	b.Client, err = rpcclient.New(&rpcclient.ConnConfig{
		Host:         b.RPCAddr(),
		User:         b.RPCUser,
		Pass:         b.RPCPass,
		HTTPPostMode: true,
		DisableTLS:   true,
	}, nil)
	if err != nil {
		t.Fatalf("testenv: btcd rpc client: %v", err)
	}
	return b
}

// start launches btcd with the current ports and waits for its RPC server.
// On error, exited tells whether btcd exited by itself, as it does when a
// port is taken; a btcd that does not answer in time is killed.
func (b *Btcd) start() (exited bool, err error) {
	args := append([]string{}, b.args...)
	args = append(args,
		"--rpclisten="+b.RPCAddr(),
		"--listen="+hostPort(b.RPCHost, b.P2PPort),
		// The only peer is port 0, which nothing can listen on: btcd
		// looks for no other peers (and no DNS seeds), and no other node
		// started by a test can turn up there.
		"--connect="+hostPort(b.RPCHost, 0),
	)
	args = append(args, b.userArgs...)
	p, err := startProcess("btcd", b.bin, args, b.env, b.LogPath)
	if err != nil {
		return false, err
	}
	b.proc = p
	err = waitFor(p, b.timeout, func() error {
		_, err := b.Call("getblockcount")
		return err
	})
	if err != nil && !p.exited() {
		_ = p.kill()
		return false, err
	}
	return err != nil, err
}

// cleanup stops btcd at the end of the test.
func (b *Btcd) cleanup() {
	if b.Client != nil {
		b.Client.Shutdown()
	}
	if b.proc == nil || b.proc.exited() {
		return
	}
	if err := b.proc.stop(stopTimeout); err != nil {
		b.t.Logf("testenv: stop btcd: %v", err)
	}
}

// RPCAddr returns the JSON-RPC server's host:port.
func (b *Btcd) RPCAddr() string { return hostPort(b.RPCHost, b.RPCPort) }

// URL returns the JSON-RPC URL with the credentials in it,
// http://user:pass@127.0.0.1:port/, the form DAEMON_URL takes.
func (b *Btcd) URL() string {
	return fmt.Sprintf("http://%s:%s@%s/", b.RPCUser, b.RPCPass, b.RPCAddr())
}

// Credentials returns the JSON-RPC user and password.
func (b *Btcd) Credentials() (user, pass string) { return b.RPCUser, b.RPCPass }

// Pid returns the process id of the running (or last) btcd process.
func (b *Btcd) Pid() int { return b.proc.pid() }

// Running reports whether the btcd process is alive.
func (b *Btcd) Running() bool { return b.proc != nil && !b.proc.exited() }

// Stop shuts btcd down gracefully (SIGTERM), killing it if it takes longer
// than 30 seconds, which fails the test.
func (b *Btcd) Stop() {
	b.t.Helper()
	b.saveRegtestChain()
	if err := b.proc.stop(stopTimeout); err != nil {
		b.t.Fatal(err)
	}
}

// Kill ends btcd at once with SIGKILL, as a crash would, and waits until
// the process is gone.
func (b *Btcd) Kill() {
	b.t.Helper()
	b.saveRegtestChain()
	if err := b.proc.kill(); err != nil {
		b.t.Fatal(err)
	}
}

// Crash ends btcd with SIGKILL at once, without saving a regtest chain
// first: for tests where the moment of death matters more than a later
// Restart (which then starts from an empty regtest chain).
func (b *Btcd) Crash() {
	b.t.Helper()
	if err := b.proc.kill(); err != nil {
		b.t.Fatal(err)
	}
}

// Restart stops btcd if it is running and starts it again with the same
// data directory, ports and credentials. The mempool starts empty: btcd
// does not keep it across restarts.
//
// NOTE: btcd deletes its regtest block database whenever it starts. To
// keep the chain anyway, Stop and Kill save the best chain's blocks over
// RPC just before stopping a regtest btcd, and Restart submits them again
// (submitblock) before returning; side branches and invalidated blocks are
// not kept. Other networks keep their data directory as it is.
func (b *Btcd) Restart() {
	b.t.Helper()
	if b.Running() {
		b.Stop()
	}
	if _, err := b.start(); err != nil {
		b.t.Fatalf("testenv: restart btcd: %v", err)
	}
	if err := b.replayRegtestChain(); err != nil {
		b.t.Fatalf("testenv: restart btcd: %v", err)
	}
}

// saveRegtestChain keeps the raw blocks of a running regtest btcd's best
// chain for replayRegtestChain.
func (b *Btcd) saveRegtestChain() {
	b.t.Helper()
	if b.Params.Net != chaincfg.RegressionNetParams.Net || !b.Running() {
		return
	}
	blocks, err := b.rawBlocks()
	if err != nil {
		b.t.Fatalf("testenv: save the regtest chain before stopping btcd: %v", err)
	}
	b.savedBlocks = blocks
}

// rawBlocks returns the hex of every best-chain block above genesis.
func (b *Btcd) rawBlocks() ([]string, error) {
	var height int64
	if err := b.callInto(&height, "getblockcount"); err != nil {
		return nil, err
	}
	blocks := make([]string, 0, height)
	for h := int64(1); h <= height; h++ {
		var hash, raw string
		if err := b.callInto(&hash, "getblockhash", h); err != nil {
			return nil, err
		}
		// btcd wants verbosity as an integer; 0 is the raw block in hex.
		if err := b.callInto(&raw, "getblock", hash, 0); err != nil {
			return nil, err
		}
		blocks = append(blocks, raw)
	}
	return blocks, nil
}

// replayRegtestChain submits the blocks saved by saveRegtestChain.
func (b *Btcd) replayRegtestChain() error {
	blocks := b.savedBlocks
	b.savedBlocks = nil
	for i, raw := range blocks {
		var reject *string
		if err := b.callInto(&reject, "submitblock", raw); err != nil {
			return fmt.Errorf("resubmit block %d: %w", i+1, err)
		}
		if reject != nil {
			return fmt.Errorf("resubmit block %d: rejected: %s", i+1, *reject)
		}
	}
	return nil
}

// callInto makes a Call and decodes its result into v.
func (b *Btcd) callInto(v any, method string, params ...any) error {
	raw, err := b.Call(method, params...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("testenv: %s: decode result: %w", method, err)
	}
	return nil
}

// Call makes one JSON-RPC request with the given positional parameters and
// returns the raw result. It does not retry, and an error reply is returned
// as a *btcjson.RPCError. Use it for calls rpcclient does not offer or
// shapes it gets wrong.
func (b *Btcd) Call(method string, params ...any) (json.RawMessage, error) {
	return jsonRPC(b.httpc, b.RPCAddr(), b.RPCUser, b.RPCPass, method, params)
}

// Generate mines n blocks to the mining address and returns their hashes.
// Only regtest and simnet can mine on demand.
func (b *Btcd) Generate(n int) []chainhash.Hash {
	b.t.Helper()
	hashes, err := b.Client.Generate(uint32(n))
	if err != nil {
		b.t.Fatalf("testenv: generate %d: %v", n, err)
	}
	out := make([]chainhash.Hash, len(hashes))
	for i, h := range hashes {
		out[i] = *h
	}
	return out
}

// Height returns the height of btcd's best block.
func (b *Btcd) Height() int32 {
	b.t.Helper()
	n, err := b.Client.GetBlockCount()
	if err != nil {
		b.t.Fatalf("testenv: getblockcount: %v", err)
	}
	return int32(n)
}

// InMempool reports whether the transaction is in btcd's mempool.
func (b *Btcd) InMempool(txid chainhash.Hash) bool {
	b.t.Helper()
	// NOTE: btcd has no getmempoolentry.
	txids, err := b.Client.GetRawMempool()
	if err != nil {
		b.t.Fatalf("testenv: getrawmempool: %v", err)
	}
	for _, h := range txids {
		if *h == txid {
			return true
		}
	}
	return false
}

// Confirmations returns how many blocks confirm the transaction: 0 while it
// is in the mempool, 1 once it is in the best block. It fails the test when
// btcd does not know the transaction.
func (b *Btcd) Confirmations(txid chainhash.Hash) uint64 {
	b.t.Helper()
	res, err := b.Client.GetRawTransactionVerbose(&txid)
	if err != nil {
		b.t.Fatalf("testenv: getrawtransaction %s: %v", txid, err)
	}
	return res.Confirmations
}

// mustTool returns the path of an installed tool, installing it first.
func mustTool(t testing.TB, name string) string {
	t.Helper()
	path, installed, err := ensureTool(name)
	if err != nil {
		t.Fatal(err)
	}
	if installed {
		t.Logf("testenv: installed %s at %s", name, path)
	}
	return path
}

// randomHex returns n random bytes in hex, for passwords.
func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}

// hostPort joins a host and a port.
func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// processGone reports whether no process has the given id.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
