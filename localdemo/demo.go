package localdemo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/btcsuite/btcd/chaincfg/v2"
	"golang.org/x/sync/errgroup"

	"amber/builder"
	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/tools"
	"amber/server"
	"amber/server/statuspage"
)

// initialBlocks is the height of the chain the demo starts from: enough
// for the first coinbase outputs to mature and be spent.
const initialBlocks = 120

// steps is the number of progress steps Run prints.
const steps = 6

// Run runs the demo until ctx ends, writing progress and instructions to
// out, then stops everything it started. cfg is the demo's configuration
// (DEMO_DIR, DEMO_BLOCK_INTERVAL, DEMO_PORT, HTTP_ADDR, LOG_LEVEL).
func Run(ctx context.Context, cfg *config.Config, logger *slog.Logger, out io.Writer) (err error) {
	if cfg.DemoBlockInterval <= 0 {
		return errors.New("demo: DEMO_BLOCK_INTERVAL must be positive")
	}
	step := 0
	progress := func(format string, args ...any) {
		step++
		fmt.Fprintf(out, "[%d/%d] %s\n", step, steps, fmt.Sprintf(format, args...))
	}

	progress("installing btcd %s (first run only: about a minute)", tools.BtcdVersion)
	bin, installed, err := tools.Ensure("btcd")
	if err != nil {
		return err
	}
	if installed {
		fmt.Fprintf(out, "      installed %s\n", bin)
	}

	dir := cfg.DemoDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "amber-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(dir)
	} else if dir, err = filepath.Abs(dir); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, d := range []string{"btcd", "bucket", "builder", "server"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}

	w, err := newWallet(dir)
	if err != nil {
		return err
	}
	progress("starting btcd in regtest (%s)", filepath.Join(dir, "btcd"))
	node, err := startBtcd(ctx, bin, filepath.Join(dir, "btcd"), w.miningAddr.EncodeAddress(), randomHex(16))
	if err != nil {
		return err
	}
	defer node.stop()

	h, err := node.height(ctx)
	if err != nil {
		return err
	}
	progress("generating a chain of %d blocks with payments (now at %d)", max(initialBlocks, h), h)
	for ; h < initialBlocks; h++ {
		if err := w.mine(ctx, node); err != nil {
			return err
		}
	}

	progress("building the index and publishing a snapshot to file://%s", filepath.Join(dir, "bucket"))
	env := map[string]string{
		"NET":                  "regtest",
		"DAEMON_URL":           node.url(),
		"DAEMON_POLL_INTERVAL": "250ms",
		"SNAPSHOT_URL":         "file://" + filepath.Join(dir, "bucket"),
		"LOG_LEVEL":            cfg.LogLevel.String(),
		"LOG_FORMAT":           cfg.LogFormat,
		"HTTP_ADDR":            "off",
	}
	getenv := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return env[k]
		}
	}
	bcfg, err := config.Load(config.Build, []string{"--once"}, getenv(map[string]string{"DB_DIRECTORY": filepath.Join(dir, "builder")}), io.Discard)
	if err != nil {
		return fmt.Errorf("demo: builder configuration: %w", err)
	}
	start := time.Now()
	if err := builder.New(bcfg, logger, io.Discard, telemetry.NewRegistry(), telemetry.NewHealth("syncing")).Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "      indexed and published in %s\n", time.Since(start).Round(time.Millisecond))

	progress("starting the server: bootstrap from the snapshot, then follow btcd")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := writeCert(certFile, keyFile); err != nil {
		return err
	}
	port := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.DemoPort+i)) }
	scfg, err := config.Load(config.Serve, nil, getenv(map[string]string{
		"DB_DIRECTORY":   filepath.Join(dir, "server"),
		"SERVICES":       fmt.Sprintf("tcp://%s,ssl://%s,ws://%s,wss://%s", port(0), port(1), port(2), port(3)),
		"SSL_CERTFILE":   certFile,
		"SSL_KEYFILE":    keyFile,
		"PEER_DISCOVERY": "off",
		"PEER_ANNOUNCE":  "off",
	}), io.Discard)
	if err != nil {
		return fmt.Errorf("demo: server configuration: %w", err)
	}

	g, gctx := errgroup.WithContext(ctx)
	reg := telemetry.NewRegistry()
	health := telemetry.NewHealth("starting")
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(gctx))
	defer stopHTTP()
	amberNode := server.New(scfg, logger, reg, health)
	if cfg.HTTPAddr != "" {
		srv := telemetry.NewHTTPServer(cfg.HTTPAddr, reg, health, logger)
		statuspage.New(amberNode, scfg.Network).Register(srv) // the network served: regtest, not the demo command's default
		g.Go(func() error { return srv.Run(httpCtx) })
	}
	g.Go(func() error {
		defer stopHTTP()
		return amberNode.Run(gctx)
	})
	g.Go(func() error {
		if err := waitListening(gctx, port(0)); err != nil {
			return err
		}
		progress("mining a block with a few payments every %s", cfg.DemoBlockInterval)
		instructions(out, cfg, port, dir)
		t := time.NewTicker(cfg.DemoBlockInterval)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
			}
			if err := w.mine(gctx, node); err != nil {
				if gctx.Err() != nil {
					return nil
				}
				return err
			}
			if h, err := node.height(gctx); err == nil {
				logger.Info("mined a block", "height", h)
			}
		}
	})
	err = g.Wait()
	fmt.Fprintln(out, "stopping: server, then btcd")
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// instructions prints what to do next.
func instructions(out io.Writer, cfg *config.Config, port func(int) string, dir string) {
	fmt.Fprintf(out, "\nAmber is serving a regtest chain.\n\n")
	fmt.Fprintf(out, "  TCP %s  TLS %s  WS %s  WSS %s (self-signed certificate %s)\n",
		port(0), port(1), port(2), port(3), filepath.Join(dir, "cert.pem"))
	fmt.Fprintf(out, "\nConnect the Electrum wallet:\n\n  electrum --regtest --oneserver --server %s:t\n", port(0))
	if cfg.HTTPAddr != "" {
		fmt.Fprintf(out, "\nStatus page: http://%s/  (metrics: http://%s/metrics)\n", cfg.HTTPAddr, cfg.HTTPAddr)
	}
	fmt.Fprintf(out, "\nPress Ctrl-C to stop every process the demo started.\n\n")
}

// waitListening waits until addr accepts TCP connections.
func waitListening(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// params are the chain parameters of the demo's network.
var params = &chaincfg.RegressionNetParams
