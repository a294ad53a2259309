package snapshot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/telemetry"
	"amber/internal/version"
	"amber/snapshot/objstore"
)

const (
	defaultParallel = 8
	defaultKeep     = 3
)

// Meta is what the caller knows about a checkpoint that its files do not
// say.
type Meta struct {
	// Network and Genesis name the chain (chain.Network.Name and
	// Genesis.String()).
	Network, Genesis string
	// Height and Block are the tip the checkpoint was taken at.
	Height int64
	Block  string
	// Schema defaults to index.SchemaVersion, PebbleFormat to
	// store.FormatVersion.
	Schema       uint32
	PebbleFormat uint64
	// UTXOCount and UTXOTotal are optional UTXO-set statistics.
	UTXOCount, UTXOTotal *uint64
}

// Publisher uploads checkpoints to Bucket. Publish and Retain of one
// Publisher never run at the same time.
type Publisher struct {
	// Bucket receives the snapshot.
	Bucket objstore.Bucket
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Progress is where the upload meter draws when it is a terminal.
	Progress io.Writer
	// Parallel is the number of concurrent hashes and uploads (default 8).
	Parallel int
	// SigningKey, when set, signs every manifest.
	SigningKey ed25519.PrivateKey
	// Keep is the number of newest manifests Retain keeps (default 3).
	Keep int
	// Schema is the index schema whose part of Bucket (SchemaBucket)
	// Retain tidies and Publish writes when Meta.Schema is zero; zero
	// means index.SchemaVersion.
	Schema uint32
	// GCGrace is how long an object must have been seen unreferenced by
	// Retain before it is deleted; zero means DefaultGCGrace.
	GCGrace time.Duration
	// Mirror, when set (OpenMirror), is what PublishDB checkpoints: it is
	// brought up to the DB's state first. Consecutive snapshots of a
	// mirror share most of their files; those of the DB itself do not.
	Mirror *store.Mirror

	now     func() time.Time
	mu      sync.Mutex
	pending map[string]time.Time // object -> first Retain that saw it unreferenced
}

func (p *Publisher) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger
}

func (p *Publisher) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func (p *Publisher) schema() uint32 {
	if p.Schema == 0 {
		return index.SchemaVersion
	}
	return p.Schema
}

func parallel(n int) int {
	if n <= 0 {
		return defaultParallel
	}
	return n
}

// Publish uploads the Pebble checkpoint in checkpointDir: every file whose
// object is not already in the bucket with the same size, then the
// manifest, then LATEST. Running it again after a crash finishes the job.
func (p *Publisher) Publish(ctx context.Context, checkpointDir string, meta Meta) (*Manifest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	log := p.logger()
	start := time.Now()

	files, err := hashDir(ctx, checkpointDir, parallel(p.Parallel))
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Format:       FormatVersion,
		Schema:       meta.Schema,
		PebbleFormat: meta.PebbleFormat,
		Network:      meta.Network,
		Genesis:      meta.Genesis,
		Height:       meta.Height,
		Block:        meta.Block,
		Files:        files,
		Created:      p.clock().UTC().Truncate(time.Second),
		Builder:      version.Version,
		UTXOCount:    meta.UTXOCount,
		UTXOTotal:    meta.UTXOTotal,
	}
	if m.Schema == 0 {
		m.Schema = p.schema()
	}
	if m.PebbleFormat == 0 {
		m.PebbleFormat = store.FormatVersion
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("publish %s: %w", checkpointDir, err)
	}
	if p.SigningKey != nil {
		if err := m.Sign(p.SigningKey); err != nil {
			return nil, err
		}
	}
	body, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	b := SchemaBucket(p.Bucket, m.Schema)

	// Data first: one upload per distinct object.
	byKey := map[string]File{}
	for _, f := range files {
		byKey[f.Key] = f
	}
	keys := make([]string, 0, len(byKey))
	var total int64
	for k, f := range byKey {
		keys = append(keys, k)
		total += f.Size
	}
	slices.Sort(keys)
	meter := telemetry.NewMeter("upload", "bytes", p.Progress, log)
	var done, uploaded, uploadedBytes, skipped atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel(p.Parallel))
	for _, k := range keys {
		f := byKey[k]
		g.Go(func() error {
			attrs, err := b.Attributes(gctx, f.Key)
			switch {
			case err == nil && attrs.Size == f.Size:
				skipped.Add(1)
				meter.Update(done.Add(f.Size), total, false)
				return nil
			case err != nil && !objstore.IsNotFound(err):
				return fmt.Errorf("publish %s: stat %s: %w", f.Name, f.Key, err)
			}
			if err := uploadFile(gctx, b, filepath.Join(checkpointDir, f.Name), f, func(n int64) {
				meter.Update(done.Add(n), total, false)
			}); err != nil {
				return err
			}
			uploaded.Add(1)
			uploadedBytes.Add(f.Size)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	meter.Update(done.Load(), total, true)

	// Then the manifest, then the pointer.
	key := m.Key()
	if err := b.Upload(ctx, key, bytes.NewReader(body), int64(len(body))); err != nil {
		return nil, fmt.Errorf("publish manifest %s: %w", key, err)
	}
	if err := b.Upload(ctx, LatestKey, bytes.NewReader([]byte(key)), int64(len(key))); err != nil {
		return nil, fmt.Errorf("publish %s -> %s: %w", LatestKey, key, err)
	}
	log.Info("snapshot published", slog.String("snapshot", key), slog.Int64("height", m.Height),
		slog.Int("files", len(files)), slog.Int64("uploaded", uploaded.Load()), slog.Int64("uploaded_bytes", uploadedBytes.Load()),
		slog.Int64("total_bytes", total),
		slog.Int64("skipped", skipped.Load()), slog.Duration("took", time.Since(start)))
	return m, nil
}

// uploadFile uploads one checkpoint file, re-hashing it on the way so a
// file that changed since it was hashed is an error, not a wrong object.
// NOTE: the object is already stored by then; checkpoint files are
// immutable, so this only guards against misuse.
func uploadFile(ctx context.Context, b objstore.Bucket, path string, f File, progress func(int64)) error {
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("publish %s: %w", f.Name, err)
	}
	defer fh.Close()
	h := sha256.New()
	r := &countReader{r: io.TeeReader(io.LimitReader(fh, f.Size), h), fn: progress}
	if err := b.Upload(ctx, f.Key, r, f.Size); err != nil {
		return fmt.Errorf("publish %s as %s: %w", f.Name, f.Key, err)
	}
	if r.n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("publish %s: file changed while publishing", f.Name)
	}
	return nil
}

type countReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 && c.fn != nil {
		c.fn(int64(n))
	}
	return n, err
}

// hashDir lists and hashes the files of a checkpoint directory.
func hashDir(ctx context.Context, dir string, par int) ([]File, error) {
	infos, err := store.ListFiles(dir)
	if err != nil {
		return nil, err
	}
	files := make([]File, len(infos))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for i, fi := range infos {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			sum, n, err := hashFile(filepath.Join(dir, fi.Name))
			if err != nil {
				return fmt.Errorf("hash %s: %w", fi.Name, err)
			}
			files[i] = File{Name: fi.Name, Size: n, SHA256: sum, Key: ObjectPrefix + sum}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return files, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
