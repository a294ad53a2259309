package snapshot

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"amber/snapshot/objstore"
)

// DefaultGCGrace is the grace period when Publisher.GCGrace is zero: far
// longer than a publish, whose objects are unreferenced until its
// manifest is written, takes.
const DefaultGCGrace = time.Hour

// maxManifestSize bounds what readManifest reads.
const maxManifestSize = 64 << 20

// manifestKeys lists the manifest keys in the bucket, newest (highest)
// first; keys that do not parse as manifest keys are left out.
func manifestKeys(ctx context.Context, b objstore.Bucket) ([]string, error) {
	var keys []string
	err := b.Iter(ctx, ManifestPrefix, func(name string) error {
		if _, ok := keyHeight(name); ok {
			keys = append(keys, name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", ManifestPrefix, b.Name(), err)
	}
	slices.SortStableFunc(keys, func(a, b string) int {
		ha, _ := keyHeight(a)
		hb, _ := keyHeight(b)
		if c := cmp.Compare(hb, ha); c != 0 {
			return c
		}
		return strings.Compare(b, a)
	})
	return keys, nil
}

// readObject reads a small object whole.
func readObject(ctx context.Context, b objstore.Bucket, key string) ([]byte, error) {
	rc, err := b.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", key, maxManifestSize)
	}
	return data, nil
}

// readManifest reads and parses the manifest stored under key, checking
// that it names itself.
func readManifest(ctx context.Context, b objstore.Bucket, key string) (*Manifest, error) {
	data, err := readObject(ctx, b, key)
	if err != nil {
		return nil, err
	}
	return parseManifestAt(data, key)
}

// objectKeyRE matches an object key as any manifest format names it.
var objectKeyRE = regexp.MustCompile(ObjectPrefix + `[0-9a-f]{64}`)

// objectRefs returns every object key named anywhere in data, whatever
// its layout: what a manifest of an unknown format may reference.
func objectRefs(data []byte) []string {
	var out []string
	for _, m := range objectKeyRE.FindAll(data, -1) {
		out = append(out, string(m))
	}
	return out
}

// parseManifestAt parses the manifest stored under key, checking that it
// names itself.
func parseManifestAt(data []byte, key string) (*Manifest, error) {
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", key, err)
	}
	if m.Key() != key {
		return nil, fmt.Errorf("manifest %s: %w: describes %s", key, ErrInvalidManifest, m.Key())
	}
	return m, nil
}

// readLatest returns the manifest key LATEST names, or "" when there is no
// LATEST.
func readLatest(ctx context.Context, b objstore.Bucket) (string, error) {
	data, err := readObject(ctx, b, LatestKey)
	if objstore.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// Retain deletes old snapshots: it keeps the Keep newest valid manifests
// (by height) and the one LATEST names, deletes every other manifest, and
// then deletes objects under sst/ that no kept manifest references.
//
// NOTE: the Bucket interface gives no modification times, so the grace
// period is counted from the first Retain that saw an object
// unreferenced, recorded in the bucket under GCPendingKey so that one-shot
// runs (a scheduled amber build --once, amber snapshot gc) count it too:
// an object is deleted only when a previous Retain also saw it
// unreferenced, at least GCGrace ago. That protects the objects of a
// publish running in another process, and always takes two runs.
// A manifest that does not parse (a newer format, say) is never deleted
// and protects every object key it contains; if it contains none, no
// object is deleted at all. Retain works in the part of the bucket of
// Publisher.Schema (SchemaBucket), so other schemas are never touched.
func (p *Publisher) Retain(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	log := p.logger()
	keep := p.Keep
	if keep <= 0 {
		keep = defaultKeep
	}
	bucket := SchemaBucket(p.Bucket, p.schema())
	latest, err := readLatest(ctx, bucket)
	if err != nil {
		return fmt.Errorf("retain: %w", err)
	}
	keys, err := manifestKeys(ctx, bucket)
	if err != nil {
		return fmt.Errorf("retain: %w", err)
	}
	referenced := map[string]bool{}
	var drop []string
	kept := 0
	unknown := false // a manifest we cannot read names no object we recognise
	for _, key := range keys {
		data, err := readObject(ctx, bucket, key)
		if err != nil {
			return fmt.Errorf("retain: %w", err)
		}
		m, err := parseManifestAt(data, key)
		if err != nil {
			// It may be of a newer format, written by a newer builder:
			// it is never deleted, and neither is any object it names.
			refs := objectRefs(data)
			for _, r := range refs {
				referenced[r] = true
			}
			unknown = unknown || len(refs) == 0
			log.Warn("retain: keeping a manifest this amber cannot read, and every object it names",
				slog.String("snapshot", key), slog.Int("objects", len(refs)), slog.Any("err", err))
			continue
		}
		if kept < keep || key == latest {
			kept++
			for _, f := range m.Files {
				referenced[f.Key] = true
			}
			continue
		}
		drop = append(drop, key)
	}
	if latest != "" && !slices.Contains(keys, latest) {
		// LATEST names a manifest we could not list; deleting objects
		// now could break it.
		return fmt.Errorf("retain: %s names %s, which is not listed", LatestKey, latest)
	}

	// Manifests first, so no listed manifest ever lacks its objects.
	for _, key := range drop {
		if err := bucket.Delete(ctx, key); err != nil {
			return fmt.Errorf("retain: delete %s: %w", key, err)
		}
		log.Info("snapshot deleted", slog.String("snapshot", key))
	}

	if unknown {
		// Which objects it needs cannot be known: delete none.
		log.Warn("retain: a manifest names no object this amber recognises; no object deleted this run")
		return nil
	}
	if p.pending == nil {
		p.pending = loadPending(ctx, bucket, log)
	}
	now := p.clock()
	seen := map[string]bool{}
	var del []string
	err = bucket.Iter(ctx, ObjectPrefix, func(name string) error {
		if referenced[name] {
			return nil
		}
		seen[name] = true
		first, ok := p.pending[name]
		if !ok {
			if p.pending == nil {
				p.pending = map[string]time.Time{}
			}
			p.pending[name] = now
			return nil
		}
		if now.Sub(first) >= cmp.Or(p.GCGrace, DefaultGCGrace) {
			del = append(del, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("retain: list %s: %w", ObjectPrefix, err)
	}
	for name := range p.pending {
		if !seen[name] {
			delete(p.pending, name)
		}
	}
	for _, name := range del {
		if err := bucket.Delete(ctx, name); err != nil {
			return fmt.Errorf("retain: delete %s: %w", name, err)
		}
		delete(p.pending, name)
	}
	if err := savePending(ctx, bucket, p.pending); err != nil {
		// Only the grace bookkeeping is lost: the next run starts it again.
		log.Warn("retain: could not record unreferenced objects; their grace period restarts next run", slog.Any("err", err))
	}
	log.Info("snapshots retained", slog.Int("kept", kept), slog.Int("deleted", len(drop)),
		slog.Int("objects_deleted", len(del)))
	return nil
}

// loadPending reads the first-seen times of unreferenced objects; a
// missing or unreadable record starts empty, which only delays deletion.
func loadPending(ctx context.Context, b objstore.Bucket, log *slog.Logger) map[string]time.Time {
	pending := map[string]time.Time{}
	data, err := readObject(ctx, b, GCPendingKey)
	if objstore.IsNotFound(err) {
		return pending
	}
	if err == nil {
		err = json.Unmarshal(data, &pending)
	}
	if err != nil {
		log.Warn("retain: ignoring the record of unreferenced objects", slog.String("key", GCPendingKey), slog.Any("err", err))
		return map[string]time.Time{}
	}
	return pending
}

// savePending writes the first-seen times, or deletes the record when
// nothing is pending.
func savePending(ctx context.Context, b objstore.Bucket, pending map[string]time.Time) error {
	if len(pending) == 0 {
		return b.Delete(ctx, GCPendingKey)
	}
	data, err := json.Marshal(pending)
	if err != nil {
		return err
	}
	return b.Upload(ctx, GCPendingKey, bytes.NewReader(data), int64(len(data)))
}
