package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"

	"amber/internal/config"
	"amber/snapshot"
	"amber/snapshot/objstore/open"
)

// runSnapshot is `amber snapshot list|show|verify|pull|gc|keygen`.
func runSnapshot(ctx context.Context, cfg *config.Config, out *output) error {
	logger, stdout, stderr := out.logger, out.stdout, out.stderr
	if len(cfg.Args) == 0 {
		return usageError("want an action: list, show, verify, pull, gc or keygen (see amber snapshot --help)")
	}
	action, args := cfg.Args[0], cfg.Args[1:]
	if action == "keygen" {
		if len(args) != 1 {
			return usageError("keygen wants the file to write the new signing key to")
		}
		pub, err := snapshot.WriteSigningKey(args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote the signing key to %s; set SNAPSHOT_SIGNING_KEY_FILE=%s on the builder\npublic key (for SNAPSHOT_TRUSTED_KEYS on servers): %x\n", args[0], args[0], []byte(pub))
		return nil
	}
	if cfg.SnapshotURL == "" {
		return usageError("SNAPSHOT_URL is required")
	}
	bucket, err := open.Open(ctx, cfg.SnapshotURL, open.Options{})
	if err != nil {
		return err
	}
	defer bucket.Close()
	r := &snapshot.Restorer{Bucket: bucket, Logger: logger, Progress: stderr, TrustedKeys: cfg.TrustedKeys}
	pick := func() (*snapshot.Manifest, error) {
		all, err := r.List(ctx)
		if err != nil {
			return nil, err
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("no valid snapshot in %s", bucket.Name())
		}
		if len(args) == 0 || args[0] == "latest" {
			return all[0], nil
		}
		for _, m := range all {
			if m.Key() == args[0] || fmt.Sprint(m.Height) == args[0] {
				return m, nil
			}
		}
		return nil, fmt.Errorf("no valid snapshot %q in %s (see amber snapshot list)", args[0], bucket.Name())
	}
	switch action {
	case "list":
		all, err := r.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HEIGHT\tBLOCK\tCREATED\tFILES\tBYTES\tSIGNED\tKEY")
		for _, m := range all {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%v\t%s\n", m.Height, m.Block, m.Created.UTC().Format("2006-01-02T15:04Z"), len(m.Files), m.Size(), m.Signature != nil, m.Key())
		}
		return tw.Flush()
	case "show":
		m, err := pick()
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(m)
	case "verify":
		m, err := pick()
		if err != nil {
			return err
		}
		if err := r.Verify(ctx, m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d files, %d bytes, every sha256 matches\n", m.Key(), len(m.Files), m.Size())
		return nil
	case "pull":
		if cfg.DBDirectory == "" {
			return usageError("pull wants DB_DIRECTORY, the empty directory to restore into")
		}
		m, err := r.Restore(ctx, cfg.DBDirectory, snapshot.ExpectNetwork(cfg.Network))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "restored %s into %s\n", m.Key(), cfg.DBDirectory)
		return nil
	case "gc":
		p := &snapshot.Publisher{Bucket: bucket, Logger: logger, GCGrace: cfg.SnapshotGCGrace}
		if err := p.Retain(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "kept the newest snapshots and the one LATEST names; a data file no kept snapshot needs is deleted by the first gc or publish at least SNAPSHOT_GC_GRACE after one saw it unneeded")
		return nil
	}
	return usageError(fmt.Sprintf("unknown action %q; want list, show, verify, pull, gc or keygen", action))
}

// errUsage marks a mistake in how the command was called (exit 2).
var errUsage = errors.New("usage")

func usageError(msg string) error { return fmt.Errorf("%w: %s", errUsage, msg) }
