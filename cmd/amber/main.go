// Command amber is the Amber Electrum server: one binary whose subcommands
// build the index and publish snapshots (build), serve wallets (serve),
// manage snapshots (snapshot), talk to a running server (rpc) and run the
// whole system locally (demo). main only wires components together.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"amber/builder"
	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/version"
	"amber/localdemo"
	"amber/server"
	"amber/server/statuspage"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // a runtime failure
	exitUsage = 2 // bad flags, environment or arguments
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: what it is for and how it runs once its
// configuration is valid.
type command struct {
	name  config.Command
	short string
	run   func(ctx context.Context, cfg *config.Config, out *output) error
}

// output is where a command logs and prints; level changes the log
// level at run time (the admin RPC's log command).
type output struct {
	logger         *slog.Logger
	level          *slog.LevelVar
	stdout, stderr io.Writer
}

var commands = []command{
	{config.Build, "sync the index from the daemon and publish snapshots", runBuild},
	{config.Serve, "serve the Electrum protocol to wallets", runServe},
	{config.Snapshot, "list, show, verify, pull or garbage-collect snapshots; make a signing key", runSnapshot},
	{config.RPC, "send an admin command to a running server", runRPC},
	{config.Demo, "run a local regtest chain, builder, snapshot and server", runDemo},
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help", "help":
		usage(stdout)
		return exitOK
	case "version", "--version":
		fmt.Fprintf(stdout, "%s (%s, %s/%s)\n", version.Software(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if c := version.Commit(); c != "" {
			fmt.Fprintf(stdout, "commit %s\n", c)
		}
		return exitOK
	}
	for _, c := range commands {
		if string(c.name) != name {
			continue
		}
		cfg, err := config.Load(c.name, args[1:], getenv, stdout)
		if errors.Is(err, config.ErrHelp) {
			return exitOK
		}
		if err != nil {
			fmt.Fprintf(stderr, "amber %s: %v\n", name, err)
			return exitUsage
		}
		var level slog.LevelVar
		level.Set(cfg.LogLevel)
		logger := telemetry.NewLogger(stderr, &level, cfg.LogFormat)
		if err := c.run(ctx, cfg, &output{logger: logger, level: &level, stdout: stdout, stderr: stderr}); err != nil {
			fmt.Fprintf(stderr, "amber %s: %v\n", name, err)
			if errors.Is(err, errUsage) {
				return exitUsage
			}
			return exitFail
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "amber: unknown command %q; run amber --help for the list\n", name)
	return exitUsage
}

// runBuild runs the builder beside the metrics and health listener.
func runBuild(ctx context.Context, cfg *config.Config, out *output) error {
	// The Go heap's share of CACHE_MB bounds the process.
	if limit, restore := builder.ApplyMemoryLimit(cfg.CacheMB); limit > 0 {
		defer restore()
		out.logger.Info("Go memory limit from CACHE_MB", "cache_mb", cfg.CacheMB, "limit_mib", limit>>20)
	}
	reg := telemetry.NewRegistry()
	health := telemetry.NewHealth("syncing")
	return withHTTP(ctx, cfg, out.logger, reg, health, nil, builder.New(cfg, out.logger, out.stderr, reg, health).Run)
}

// runServe runs a server node beside the metrics and health listener.
func runServe(ctx context.Context, cfg *config.Config, out *output) error {
	if len(cfg.Services) == 0 {
		out.logger.Warn("SERVICES is empty: no listeners, no wallet can connect")
	}
	reg := telemetry.NewRegistry()
	health := telemetry.NewHealth("starting")
	node := server.New(cfg, out.logger, reg, health)
	node.LogLevel = out.level
	node.Progress = out.stderr
	return withHTTP(ctx, cfg, out.logger, reg, health, statuspage.New(node, cfg.Network).Register, node.Run)
}

// runDemo runs the local demo until interrupted; see package localdemo.
func runDemo(ctx context.Context, cfg *config.Config, out *output) error {
	return localdemo.Run(ctx, cfg, out.logger, out.stdout)
}

// withHTTP runs a component with the HTTP listener (when HTTP_ADDR is
// set) beside it; pages, when not nil, adds the component's own pages. Shutdown order: the component finishes (commits, closes
// the index), then the listener stops, so probes see the end.
func withHTTP(ctx context.Context, cfg *config.Config, logger *slog.Logger, reg *prometheus.Registry, health *telemetry.Health, pages func(interface{ Handle(string, http.Handler) }), run func(context.Context) error) error {
	g, gctx := errgroup.WithContext(ctx)
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(gctx))
	defer stopHTTP()
	if cfg.HTTPAddr != "" {
		srv := telemetry.NewHTTPServer(cfg.HTTPAddr, reg, health, logger)
		if cfg.Pprof {
			srv.ServePprof()
		}
		if pages != nil {
			pages(srv)
		}
		g.Go(func() error { return srv.Run(httpCtx) })
	}
	g.Go(func() error {
		defer stopHTTP()
		return run(gctx)
	})
	return g.Wait()
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "%s: an Electrum server whose index comes from a snapshot bucket.\n\nUsage: amber COMMAND [flags]\n\nCommands:\n", version.Software())
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "  %-10s %s\n\nRun amber COMMAND --help for the flags of one command.\n\n", "version", "print the version")
	config.WriteAllUsage(w)
}
