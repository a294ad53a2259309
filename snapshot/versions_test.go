package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/chainsync"
	"amber/internal/index"
	"amber/internal/store"
	"amber/internal/testenv/chaingen"
)

// tinyChain returns the raw blocks of the Tiny chain with genesis first.
func tinyChain(t *testing.T) (*chain.Network, [][]byte) {
	t.Helper()
	c := chaingen.Load(t, chaingen.Tiny)
	net, _ := chain.Lookup("Bitcoin", "regtest")
	var g bytes.Buffer
	if err := net.Params.GenesisBlock.Serialize(&g); err != nil {
		t.Fatal(err)
	}
	return net, append([][]byte{g.Bytes()}, c.Blocks...)
}

// indexTo indexes raw[:height+1] into the index in dir.
func indexTo(t *testing.T, net *chain.Network, raw [][]byte, dir string, height int) *store.DB {
	t.Helper()
	db, ix, err := index.OpenDir(dir, 16<<20, net, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := chainsync.NewMemorySource(raw[:height+1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chainsync.New(ix, src, chainsync.Options{}).SyncToTip(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// tipOf opens the index in dir and returns its height.
func tipOf(t *testing.T, net *chain.Network, dir string) int64 {
	t.Helper()
	got, err := inspectDB(dir, net)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return got.Height
}

// copyDir copies the flat directory src to dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func noLeftovers(t *testing.T, dbDir string) {
	t.Helper()
	for _, s := range []string{".new", ".old", ".new.staging"} {
		if _, err := os.Stat(dbDir + s); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", dbDir+s, err)
		}
	}
}

// TestBootstrapReplacesLocalDB: a local index far behind the newest
// snapshot, or of another schema, is replaced by the snapshot; one close
// enough, or with replacement off, is kept.
func TestBootstrapReplacesLocalDB(t *testing.T) {
	ctx := context.Background()
	net, raw := tinyChain(t)
	b := newMem()
	builder := indexTo(t, net, raw, filepath.Join(t.TempDir(), "b"), 100)
	stale := filepath.Join(t.TempDir(), "stale")
	if err := builder.Checkpoint(stale); err != nil {
		t.Fatal(err)
	}
	builder.Close()
	builder = indexTo(t, net, raw, builder.Dir(), 250)
	defer builder.Close()
	if _, err := PublishDB(ctx, builder, net, &Publisher{Bucket: b}, nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		maxBehind int64
		schema    uint32 // rewrite the local DB's schema row
		want      int64  // local tip afterwards
	}{
		{"far behind", 100, 0, 250},
		{"close enough", 150, 0, 100},
		{"replacement off", 0, 0, 100},
		{"other schema", 0, 99, 250},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dbDir := filepath.Join(t.TempDir(), "db")
			copyDir(t, stale, dbDir)
			if tc.schema != 0 {
				setSchema(t, net, dbDir, tc.schema)
			}
			m, err := Bootstrap(ctx, b, dbDir, net, &Restorer{MaxBehind: tc.maxBehind})
			if err != nil {
				t.Fatal(err)
			}
			if got := tipOf(t, net, dbDir); got != tc.want {
				t.Errorf("local tip %d, want %d", got, tc.want)
			}
			if (m != nil) != (tc.want == 250) {
				t.Errorf("manifest %v, replaced %v", m, tc.want == 250)
			}
			noLeftovers(t, dbDir)
		})
	}

	// No snapshot to compare with: the DB is kept.
	dbDir := filepath.Join(t.TempDir(), "db")
	copyDir(t, stale, dbDir)
	_, err := Bootstrap(ctx, newMem(), dbDir, net, &Restorer{MaxBehind: 100})
	if err != nil || tipOf(t, net, dbDir) != 100 {
		t.Errorf("empty bucket: %v, tip %d; want the local DB kept", err, tipOf(t, net, dbDir))
	}

	// Another schema and no snapshot of ours: the DB is kept, and the
	// error says both, so that the caller stops instead of syncing from
	// genesis.
	dbDir = filepath.Join(t.TempDir(), "db")
	copyDir(t, stale, dbDir)
	setSchema(t, net, dbDir, 99)
	_, err = Bootstrap(ctx, newMem(), dbDir, net, &Restorer{})
	if !errors.Is(err, index.ErrSchema) || !errors.Is(err, ErrNoSnapshot) {
		t.Errorf("another schema, empty bucket: %v; want ErrSchema and ErrNoSnapshot", err)
	}
	if _, err := inspectDB(dbDir, net); !errors.Is(err, index.ErrSchema) {
		t.Errorf("another schema, empty bucket: the DB is now %v; want it kept", err)
	}
	noLeftovers(t, dbDir)
}

// setSchema rewrites the schema row of the DB in dir.
func setSchema(t *testing.T, net *chain.Network, dir string, schema uint32) {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], schema)
	wb := db.NewBatch()
	wb.Set([]byte("Mschema"), v[:])
	if err := wb.Commit(true); err != nil {
		t.Fatal(err)
	}
	wb.Close()
	db.Close()
	if _, err := inspectDB(dir, net); !errors.Is(err, index.ErrSchema) {
		t.Fatalf("rewritten schema row: %v, want ErrSchema", err)
	}
}

// TestBootstrapFinishesSwap: whatever moment a swap was cut short, the
// next Bootstrap leaves one complete DB in place and nothing beside it.
func TestBootstrapFinishesSwap(t *testing.T) {
	ctx := context.Background()
	net, raw := tinyChain(t)
	src := indexTo(t, net, raw, filepath.Join(t.TempDir(), "src"), 60)
	oldCopy := filepath.Join(t.TempDir(), "old")
	if err := src.Checkpoint(oldCopy); err != nil {
		t.Fatal(err)
	}
	src.Close()
	src = indexTo(t, net, raw, src.Dir(), 200)
	newCopy := filepath.Join(t.TempDir(), "new")
	if err := src.Checkpoint(newCopy); err != nil {
		t.Fatal(err)
	}
	src.Close()

	tests := []struct {
		name         string
		db, new, old string // what each path holds: "old", "new", "partial" or ""
		want         int64
	}{
		{"new restored, not swapped", "old", "new", "", 60},
		{"between the renames", "", "new", "old", 200},
		{"between the renames, empty dir", "empty", "new", "old", 200},
		{"swapped, old not removed", "new", "", "old", 200},
		{"half-removed leftover", "old", "partial", "", 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dbDir := filepath.Join(t.TempDir(), "db")
			place := func(path, what string) {
				switch what {
				case "old":
					copyDir(t, oldCopy, path)
				case "new":
					copyDir(t, newCopy, path)
				case "empty":
					os.MkdirAll(path, 0o755)
				case "partial":
					copyDir(t, newCopy, path)
					os.Remove(filepath.Join(path, "OPTIONS-000003"))
					matches, _ := filepath.Glob(filepath.Join(path, "MANIFEST-*"))
					for _, m := range matches {
						os.Remove(m)
					}
				}
			}
			place(dbDir, tc.db)
			place(dbDir+".new", tc.new)
			place(dbDir+".old", tc.old)
			// An empty bucket: only the local state decides.
			if _, err := Bootstrap(ctx, newMem(), dbDir, net, &Restorer{}); err != nil {
				t.Fatal(err)
			}
			if got := tipOf(t, net, dbDir); got != tc.want {
				t.Errorf("tip %d, want %d", got, tc.want)
			}
			if _, err := os.Stat(dbDir + ".old"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf(".old left: %v", err)
			}
		})
	}
}

// TestRetainUnknownManifests: retention never deletes a manifest it cannot
// parse (a newer format) nor any object such a manifest names, nor what
// LATEST names; with a manifest naming nothing it recognises it deletes no
// object at all. Objects no manifest names still go.
func TestRetainUnknownManifests(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	clock := time0
	p := &Publisher{Schema: 1, Bucket: b, Keep: 1, now: func() time.Time { return clock }}
	ms := publishN(t, d, p, 1, 2, 3)

	// A newer builder rewrote snapshot 1 in a format this one cannot read,
	// and LATEST names a format-2 snapshot at height 9 with an object of
	// its own.
	future := func(m *Manifest) []byte {
		body, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.Replace(body, []byte(`"format": 1`), []byte(`"format": 2, "chunks": []`), 1)
		if _, err := ParseManifest(body); !errors.Is(err, ErrInvalidManifest) {
			t.Fatalf("future manifest parses: %v", err)
		}
		return body
	}
	b.put(ms[0].Key(), future(ms[0]))
	own := ObjectPrefix + strings.Repeat("9a", 32)
	b.put(own, []byte("only the future manifest names me"))
	m9 := *ms[2]
	m9.Height, m9.Block = 9, blockHash(9)
	m9.Files = append([]File{{Name: "000999.sst", Size: 33, SHA256: strings.Repeat("9a", 32), Key: own}}, m9.Files...)
	b.put(m9.Key(), future(&m9))
	b.put(LatestKey, []byte(m9.Key()))
	orphan := ObjectPrefix + strings.Repeat("0f", 32)
	b.put(orphan, []byte("nobody names me"))

	for range 2 {
		if err := p.Retain(ctx); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(DefaultGCGrace)
	}
	for _, k := range []string{ms[0].Key(), m9.Key(), own, LatestKey} {
		if ok, _ := b.Exists(ctx, k); !ok {
			t.Errorf("%s deleted", k)
		}
	}
	for _, f := range ms[0].Files {
		if ok, _ := b.Exists(ctx, f.Key); !ok {
			t.Errorf("%s of the unreadable manifest %s deleted", f.Key, ms[0].Key())
		}
	}
	if ok, _ := b.Exists(ctx, orphan); ok {
		t.Error("an object no manifest names was kept")
	}
	if ok, _ := b.Exists(ctx, ms[1].Key()); ok {
		t.Error("old readable manifest 2 kept with Keep 1")
	}

	// A manifest naming no object we recognise: nothing may be deleted.
	b.put(ManifestPrefix+"0000000010-"+blockHash(10)+".json", []byte(`{"format": 3, "parts": "elsewhere"}`))
	b.put(orphan, []byte("nobody names me"))
	for range 2 {
		if err := p.Retain(ctx); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(DefaultGCGrace)
	}
	if ok, _ := b.Exists(ctx, orphan); !ok {
		t.Error("objects deleted although a manifest's references are unknown")
	}
}

// TestSchemaParts is a rolling schema upgrade in one bucket: the builder of
// schema 2 publishes and retains beside the builder of schema 1; nodes of
// schema 1 go on restoring schema 1's newest snapshot (never a schema 2
// one, though it is higher), and nodes of schema 2 restore theirs.
func TestSchemaParts(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	clock := time0
	v1 := &Publisher{Bucket: b, Schema: 1, Keep: 1, now: func() time.Time { return clock }}
	v2 := &Publisher{Bucket: b, Schema: 2, Keep: 1, now: func() time.Time { return clock }}
	old := publishN(t, d, v1, 5)
	var news []*Manifest
	for _, h := range []int{6, 7, 8} {
		news = append(news, publishN(t, d, v2, h)...)
		for _, p := range []*Publisher{v2, v1} {
			if err := p.Retain(ctx); err != nil {
				t.Fatal(err)
			}
		}
		clock = clock.Add(DefaultGCGrace)
	}
	if data, _ := b.get(LatestKey); string(data) != old[0].Key() {
		t.Errorf("root LATEST = %q, want schema 1's %s", data, old[0].Key())
	}
	if data, _ := b.get(SchemaPrefix(2) + LatestKey); string(data) != news[2].Key() {
		t.Errorf("schema 2 LATEST = %q, want %s", data, news[2].Key())
	}
	r := &Restorer{Bucket: b}
	for _, tc := range []struct {
		schema uint32
		height int64
	}{{1, 5}, {2, 8}} {
		want := expect
		want.Schema = tc.schema
		m, err := r.Restore(ctx, filepath.Join(t.TempDir(), "r"), want)
		if err != nil {
			t.Fatalf("schema %d: %v", tc.schema, err)
		}
		if m.Height != tc.height || m.Schema != tc.schema {
			t.Errorf("schema %d node restored %s (schema %d)", tc.schema, m.Key(), m.Schema)
		}
	}
	// Schema 2's retention left schema 1's objects alone.
	if err := r.Verify(ctx, old[0]); err != nil {
		t.Errorf("schema 1 snapshot damaged by schema 2's retention: %v", err)
	}
}
