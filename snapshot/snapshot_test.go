package snapshot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/store"
	"amber/snapshot/objstore"
)

// memBucket is an in-memory Bucket that counts uploads and can fail.
type memBucket struct {
	mu        sync.Mutex
	objs      map[string][]byte
	uploads   []string
	failAfter int // fail uploads once this many succeeded; <0: never
	getFails  int // fail this many reads of sst/ objects, as a dead bucket does
	gets      []string
}

var _ objstore.Bucket = (*memBucket)(nil)

func newMem() *memBucket { return &memBucket{objs: map[string][]byte{}, failAfter: -1} }

func (b *memBucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAfter >= 0 && len(b.uploads) >= b.failAfter {
		return errors.New("injected upload failure")
	}
	if int64(len(data)) != size {
		return fmt.Errorf("upload %s: %d bytes, want %d", name, len(data), size)
	}
	b.objs[name] = data
	b.uploads = append(b.uploads, name)
	return nil
}

func (b *memBucket) get(name string) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gets = append(b.gets, name)
	// Objects under any schema's part count: schema-N/sst/x as sst/x.
	if b.getFails > 0 && (strings.HasPrefix(name, ObjectPrefix) || strings.Contains(name, "/"+ObjectPrefix)) {
		b.getFails--
		return nil, errors.New("injected: connection refused")
	}
	d, ok := b.objs[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, objstore.ErrNotFound)
	}
	return d, nil
}

func (b *memBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	d, err := b.get(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(d)), nil
}

func (b *memBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	d, err := b.get(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(d[off : off+length])), nil
}

func (b *memBucket) Exists(ctx context.Context, name string) (bool, error) {
	_, err := b.get(name)
	return err == nil, nil
}

func (b *memBucket) Attributes(ctx context.Context, name string) (objstore.Attrs, error) {
	d, err := b.get(name)
	if err != nil {
		return objstore.Attrs{}, err
	}
	return objstore.Attrs{Size: int64(len(d))}, nil
}

func (b *memBucket) Iter(ctx context.Context, prefix string, fn func(string) error) error {
	b.mu.Lock()
	var names []string
	for k := range b.objs {
		if strings.HasPrefix(k, prefix) {
			names = append(names, k)
		}
	}
	b.mu.Unlock()
	slices.Sort(names)
	for _, n := range names {
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

func (b *memBucket) Delete(ctx context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objs, name)
	return nil
}

func (b *memBucket) Name() string { return "mem" }
func (b *memBucket) Close() error { return nil }

func (b *memBucket) put(name string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objs[name] = data
}

func (b *memBucket) resetUploads() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	u := b.uploads
	b.uploads = nil
	return u
}

const (
	genesis = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
	netName = "mainnet"
)

func blockHash(i int) string { return fmt.Sprintf("%064x", i+1) }

func meta(height int) Meta {
	return Meta{Network: netName, Genesis: genesis, Height: int64(height), Block: blockHash(height)}
}

// Schema 1's snapshots live at the root of the bucket, where these tests
// look at the keys themselves.
var expect = Expect{Network: netName, Genesis: genesis, Schema: 1}

// testDB is a real Pebble store that hands out checkpoints.
type testDB struct {
	t    *testing.T
	db   *store.DB
	keys int
	n    int
}

func newTestDB(t *testing.T) *testDB {
	db, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &testDB{t: t, db: db}
}

// write adds n keys and flushes them into a new SST.
func (d *testDB) write(n int) {
	b := d.db.NewBatch()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key%08d", d.keys)
		if err := b.Set([]byte(k), bytes.Repeat([]byte(k), 20)); err != nil {
			d.t.Fatal(err)
		}
		d.keys++
	}
	if err := b.Commit(true); err != nil {
		d.t.Fatal(err)
	}
	if err := d.db.Flush(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *testDB) checkpoint() string {
	d.n++
	dir := filepath.Join(d.t.TempDir(), fmt.Sprintf("cp%d", d.n))
	if err := d.db.Checkpoint(dir); err != nil {
		d.t.Fatal(err)
	}
	return dir
}

// checkRestored opens dir as a store and checks it has keys 0..n-1.
func checkRestored(t *testing.T, dir string, n int) {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key%08d", i)
		v, err := db.Get([]byte(k))
		if err != nil || !bytes.Equal(v, bytes.Repeat([]byte(k), 20)) {
			t.Fatalf("key %s: %q, %v", k, v, err)
		}
	}
	if _, err := os.Stat(dir + ".staging"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging dir left behind: %v", err)
	}
}

// publishN publishes one checkpoint per height, writing more keys before
// each, and returns the manifests.
func publishN(t *testing.T, d *testDB, p *Publisher, heights ...int) []*Manifest {
	t.Helper()
	var out []*Manifest
	for _, h := range heights {
		d.write(50)
		m, err := p.Publish(context.Background(), d.checkpoint(), meta(h))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestPublishRestore(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	p := &Publisher{Schema: 1, Bucket: b}
	m1 := publishN(t, d, p, 10)[0]
	up := b.resetUploads()
	if up[len(up)-1] != LatestKey || up[len(up)-2] != m1.Key() {
		t.Fatalf("upload order %v: want manifest then LATEST last", up)
	}
	if m1.Schema == 0 || m1.PebbleFormat != store.FormatVersion || m1.Builder == "" {
		t.Fatalf("manifest %+v", m1)
	}

	// A second checkpoint uploads only what the first did not have.
	d.write(50)
	m2, err := p.Publish(ctx, d.checkpoint(), meta(11))
	if err != nil {
		t.Fatal(err)
	}
	had := map[string]bool{}
	for _, f := range m1.Files {
		had[f.Key] = true
	}
	want := map[string]bool{}
	for _, f := range m2.Files {
		if !had[f.Key] {
			want[f.Key] = true
		}
	}
	var got []string
	for _, u := range b.resetUploads() {
		if strings.HasPrefix(u, ObjectPrefix) {
			got = append(got, u)
			if !want[u] {
				t.Errorf("re-uploaded %s", u)
			}
		}
	}
	if len(got) != len(want) || len(got) == 0 {
		t.Errorf("uploaded %d objects, want %d new ones", len(got), len(want))
	}

	// Publishing the same checkpoint again uploads no data.
	cp := d.checkpoint()
	if _, err := p.Publish(ctx, cp, meta(12)); err != nil {
		t.Fatal(err)
	}
	b.resetUploads()
	if _, err := p.Publish(ctx, cp, meta(12)); err != nil {
		t.Fatal(err)
	}
	for _, u := range b.resetUploads() {
		if strings.HasPrefix(u, ObjectPrefix) {
			t.Errorf("re-publish uploaded %s", u)
		}
	}

	r := &Restorer{Schema: 1, Bucket: b, Parallel: 3}
	dest := filepath.Join(t.TempDir(), "restored")
	m, err := r.Restore(ctx, dest, expect)
	if err != nil {
		t.Fatal(err)
	}
	if m.Height != 12 {
		t.Errorf("restored height %d, want 12", m.Height)
	}
	checkRestored(t, dest, d.keys)

	// A non-empty destination is refused; an empty one is fine.
	if _, err := r.Restore(ctx, dest, expect); err == nil {
		t.Error("restore into a non-empty dir succeeded")
	}
	empty := t.TempDir()
	if _, err := r.Restore(ctx, empty, expect); err != nil {
		t.Errorf("restore into an empty dir: %v", err)
	}

	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hs []int64
	for _, m := range list {
		hs = append(hs, m.Height)
		if err := r.Verify(ctx, m); err != nil {
			t.Errorf("verify %s: %v", m.Key(), err)
		}
	}
	if !slices.Equal(hs, []int64{12, 11, 10}) {
		t.Errorf("list heights %v", hs)
	}
}

func TestPublishCrashIdempotent(t *testing.T) {
	ctx := context.Background()
	d := newTestDB(t)
	d.write(50)
	d.write(50)
	cp := d.checkpoint()
	for fail := 0; ; fail++ {
		b := newMem()
		b.failAfter = fail
		p := &Publisher{Schema: 1, Bucket: b, Parallel: 2}
		_, err := p.Publish(ctx, cp, meta(5))
		if err == nil {
			break // every upload fitted under the limit
		}
		if _, lerr := b.get(LatestKey); lerr == nil {
			t.Fatalf("fail after %d: LATEST written by a failed publish", fail)
		}
		b.failAfter = -1
		m, err := p.Publish(ctx, cp, meta(5))
		if err != nil {
			t.Fatalf("fail after %d: rerun: %v", fail, err)
		}
		up := b.resetUploads()
		if up[len(up)-1] != LatestKey {
			t.Fatalf("LATEST not last: %v", up)
		}
		r := &Restorer{Schema: 1, Bucket: b}
		if err := r.Verify(ctx, m); err != nil {
			t.Fatalf("fail after %d: %v", fail, err)
		}
		dest := filepath.Join(t.TempDir(), "r")
		if _, err := r.Restore(ctx, dest, expect); err != nil {
			t.Fatalf("fail after %d: restore: %v", fail, err)
		}
		checkRestored(t, dest, d.keys)
	}
}

func TestRestoreFallback(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		break_ func(b *memBucket, newest *Manifest)
		want   string // in the logged/joined error; "" for none
	}{
		{"garbage manifest", func(b *memBucket, m *Manifest) { b.put(m.Key(), []byte("{not json")) }, ""},
		{"unknown format", func(b *memBucket, m *Manifest) {
			b.put(m.Key(), []byte(`{"format": 99}`))
		}, ""},
		{"missing manifest", func(b *memBucket, m *Manifest) { b.Delete(ctx, m.Key()) }, ""},
		{"tampered object", func(b *memBucket, m *Manifest) {
			// Change an object only the newest snapshot has.
			f := newestOnly(t, b, m)
			d, _ := b.get(f.Key)
			d = slices.Clone(d)
			d[len(d)/2] ^= 1
			b.put(f.Key, d)
		}, ""},
		{"truncated object", func(b *memBucket, m *Manifest) {
			f := newestOnly(t, b, m)
			d, _ := b.get(f.Key)
			b.put(f.Key, d[:len(d)-1])
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newMem()
			d := newTestDB(t)
			p := &Publisher{Schema: 1, Bucket: b}
			publishN(t, d, p, 1)
			olderKeys := d.keys
			ms := publishN(t, d, p, 2)
			tc.break_(b, ms[0])
			r := &Restorer{Schema: 1, Bucket: b}
			dest := filepath.Join(t.TempDir(), "r")
			m, err := r.Restore(ctx, dest, expect)
			if err != nil {
				t.Fatal(err)
			}
			if m.Height != 1 {
				t.Fatalf("restored %d, want the older snapshot 1", m.Height)
			}
			checkRestored(t, dest, olderKeys)
		})
	}
}

// newestOnly returns a file of m whose object no other manifest uses.
func newestOnly(t *testing.T, b *memBucket, m *Manifest) File {
	t.Helper()
	other := map[string]bool{}
	b.Iter(context.Background(), ManifestPrefix, func(k string) error {
		if k != m.Key() {
			om, err := readManifest(context.Background(), b, k)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range om.Files {
				other[f.Key] = true
			}
		}
		return nil
	})
	for _, f := range m.Files {
		if !other[f.Key] && f.Size > 0 {
			return f
		}
	}
	t.Fatal("no file unique to the newest snapshot")
	return File{}
}

func TestCorruptNamesFile(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	m := publishN(t, d, &Publisher{Schema: 1, Bucket: b}, 1)[0]
	f := newestOnly(t, b, m)
	data, _ := b.get(f.Key)
	data = slices.Clone(data)
	data[0] ^= 0xff
	b.put(f.Key, data)
	r := &Restorer{Schema: 1, Bucket: b}
	err := r.Verify(ctx, m)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f.Name) {
		t.Errorf("verify: %v; want ErrCorrupt naming %s", err, f.Name)
	}
	dest := filepath.Join(t.TempDir(), "r")
	_, err = r.Restore(ctx, dest, expect)
	if !errors.Is(err, ErrNoSnapshot) || !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), f.Name) {
		t.Errorf("restore: %v; want ErrCorrupt naming %s", err, f.Name)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dest created by a failed restore: %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(dest+".staging", "*.part"))
	if len(matches) > 0 {
		t.Errorf(".part files left: %v", matches)
	}
}

func TestRestoreMismatch(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	publishN(t, d, &Publisher{Schema: 1, Bucket: b}, 1)
	tests := []struct {
		name string
		want Expect
		err  error
		msg  string
	}{
		{"network", Expect{Network: "testnet", Genesis: genesis, Schema: 1}, ErrMismatch, "network mainnet"},
		{"genesis", Expect{Network: netName, Genesis: blockHash(99), Schema: 1}, ErrMismatch, "genesis"},
		// Another schema looks in its own part of the bucket, empty here.
		{"schema", Expect{Network: netName, Genesis: genesis, Schema: 999}, ErrNoSnapshot, "has none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Restorer{Schema: 1, Bucket: b}
			_, err := r.Restore(ctx, filepath.Join(t.TempDir(), "r"), tc.want)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v mentioning %q", err, tc.err, tc.msg)
			}
		})
	}
}

func TestSigning(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	otherPub, otherPriv, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name    string
		signer  ed25519.PrivateKey
		trusted []ed25519.PublicKey
		ok      bool
	}{
		{"trusted key", priv, []ed25519.PublicKey{otherPub, pub}, true},
		{"unsigned, no keys required", nil, nil, true},
		{"signed, no keys required", priv, nil, true},
		{"unsigned refused", nil, []ed25519.PublicKey{pub}, false},
		{"wrong key refused", otherPriv, []ed25519.PublicKey{pub}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newMem()
			d := newTestDB(t)
			publishN(t, d, &Publisher{Schema: 1, Bucket: b, SigningKey: tc.signer}, 1)
			r := &Restorer{Schema: 1, Bucket: b, TrustedKeys: tc.trusted}
			_, err := r.Restore(ctx, filepath.Join(t.TempDir(), "r"), expect)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, ErrUntrusted) {
				t.Fatalf("got %v, want ErrUntrusted", err)
			}
		})
	}

	// A signed manifest edited after signing is refused.
	b := newMem()
	d := newTestDB(t)
	m := publishN(t, d, &Publisher{Schema: 1, Bucket: b, SigningKey: priv}, 1)[0]
	m.Builder = "evil"
	body, _ := m.Marshal()
	b.put(m.Key(), body)
	r := &Restorer{Schema: 1, Bucket: b, TrustedKeys: []ed25519.PublicKey{pub}}
	if _, err := r.Restore(ctx, filepath.Join(t.TempDir(), "r"), expect); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("edited manifest: %v, want ErrUntrusted", err)
	}
}

func TestRetain(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	p := &Publisher{Schema: 1, Bucket: b, Keep: 2}
	ms := publishN(t, d, p, 1, 2, 3, 4)
	// An orphan object, as left by a publish that crashed for good.
	b.put(ObjectPrefix+strings.Repeat("ab", 32), []byte("orphan"))

	// LATEST names an old snapshot: it is kept with the newest two.
	b.put(LatestKey, []byte(ms[0].Key()))
	clock := time0
	p.now = func() time.Time { return clock }
	for range 2 { // the first run only marks unreferenced objects
		if err := p.Retain(ctx); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(DefaultGCGrace)
	}
	r := &Restorer{Schema: 1, Bucket: b}
	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var hs []int64
	needed := map[string]bool{}
	for _, m := range list {
		hs = append(hs, m.Height)
		if err := r.Verify(ctx, m); err != nil {
			t.Errorf("kept %s lost a file: %v", m.Key(), err)
		}
		for _, f := range m.Files {
			needed[f.Key] = true
		}
	}
	if !slices.Equal(hs, []int64{4, 3, 1}) {
		t.Errorf("kept heights %v, want [4 3 1]", hs)
	}
	b.Iter(ctx, ObjectPrefix, func(k string) error {
		if !needed[k] {
			t.Errorf("unreferenced %s not deleted", k)
		}
		return nil
	})
	only2 := newestOnlyOf(ms[1], ms[0], ms[2], ms[3])
	if len(only2) == 0 {
		t.Fatal("snapshot 2 has no objects of its own")
	}
	for _, k := range only2 {
		if ok, _ := b.Exists(ctx, k); ok {
			t.Errorf("%s of deleted snapshot 2 kept", k)
		}
	}

	// Restore still works from LATEST.
	dest := filepath.Join(t.TempDir(), "r")
	if _, err := r.Restore(ctx, dest, expect); err != nil {
		t.Fatal(err)
	}
}

func TestRetainGrace(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	orphan := ObjectPrefix + strings.Repeat("cd", 32)
	b.put(orphan, []byte("x"))
	p := &Publisher{Schema: 1, Bucket: b, GCGrace: 10 * 60e9}
	clock := time0
	p.now = func() time.Time { return clock }
	for _, step := range []struct {
		advance time.Duration
		exists  bool
	}{{0, true}, {5 * time.Minute, true}, {6 * time.Minute, false}} {
		clock = clock.Add(step.advance)
		if err := p.Retain(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Exists(ctx, orphan); ok != step.exists {
			t.Fatalf("after %v: exists %v, want %v", clock.Sub(time0), ok, step.exists)
		}
	}
}

// TestRetainGraceAcrossRuns runs each Retain as a new process would (a
// new Publisher): the grace period still counts, through the record in
// the bucket, and the orphan goes once it has passed.
func TestRetainGraceAcrossRuns(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	orphan := ObjectPrefix + strings.Repeat("ef", 32)
	b.put(orphan, []byte("x"))
	clock := time0
	for _, step := range []struct {
		advance time.Duration
		exists  bool
	}{{0, true}, {5 * time.Minute, true}, {6 * time.Minute, false}} {
		clock = clock.Add(step.advance)
		p := &Publisher{Schema: 1, Bucket: b, GCGrace: 10 * time.Minute}
		p.now = func() time.Time { return clock }
		if err := p.Retain(ctx); err != nil {
			t.Fatal(err)
		}
		if ok, _ := b.Exists(ctx, orphan); ok != step.exists {
			t.Fatalf("after %v: exists %v, want %v", clock.Sub(time0), ok, step.exists)
		}
	}
	if ok, _ := b.Exists(ctx, GCPendingKey); ok {
		t.Error("the pending record stays with nothing pending")
	}
	// A corrupt record delays deletion but breaks nothing.
	b.put(GCPendingKey, []byte("{not json"))
	b.put(orphan, []byte("x"))
	p := &Publisher{Schema: 1, Bucket: b, GCGrace: 10 * time.Minute}
	p.now = func() time.Time { return clock }
	if err := p.Retain(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Exists(ctx, orphan); !ok {
		t.Error("an orphan deleted on the first run after a corrupt record")
	}
}

func newestOnlyOf(m *Manifest, others ...*Manifest) []string {
	other := map[string]bool{}
	for _, o := range others {
		for _, f := range o.Files {
			other[f.Key] = true
		}
	}
	var out []string
	for _, f := range m.Files {
		if !other[f.Key] {
			out = append(out, f.Key)
		}
	}
	return out
}

// TestBootstrapRetry: a bucket failing mid-download is retried, not
// given up for an older snapshot or a sync from genesis.
func TestBootstrapRetry(t *testing.T) {
	defer func(w time.Duration) { firstRetryWait = w }(firstRetryWait)
	firstRetryWait = time.Millisecond
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	ms := publishN(t, d, &Publisher{Bucket: b}, 1, 2)
	net, err := chain.Lookup("bitcoin", netName)
	if err != nil {
		t.Fatal(err)
	}
	b.getFails = 3
	var retries []error
	dir := filepath.Join(t.TempDir(), "db")
	m, err := BootstrapRetry(ctx, b, dir, net, &Restorer{}, func(err error, _ time.Duration) { retries = append(retries, err) })
	if err != nil || m == nil || m.Key() != ms[1].Key() {
		t.Fatalf("BootstrapRetry = %v, %v; want %s", m, err, ms[1].Key())
	}
	if len(retries) == 0 || !errors.Is(retries[0], ErrUnavailable) || !strings.Contains(retries[0].Error(), "retry when the bucket is reachable") {
		t.Errorf("retries: %v", retries)
	}
	// Bootstrap alone reports the outage rather than falling back.
	b.getFails = 1
	if _, err := Bootstrap(ctx, b, filepath.Join(t.TempDir(), "db"), net, &Restorer{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Bootstrap with a failing bucket: %v", err)
	}
	// A cancelled wait ends the retries.
	b.getFails = 1 << 30
	cctx, cancel := context.WithCancel(ctx)
	_, err = BootstrapRetry(cctx, b, filepath.Join(t.TempDir(), "db"), net, &Restorer{}, func(error, time.Duration) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("BootstrapRetry after cancel: %v", err)
	}
}

// A restore with DeferSync is marked until Settle; a node that stops
// before then restores again at its next start, keeping the files that
// still verify and fetching the one a power cut tore.
func TestDeferSync(t *testing.T) {
	ctx := context.Background()
	b := newMem()
	d := newTestDB(t)
	p := &Publisher{Bucket: b}
	publishN(t, d, p, 1, 2, 3)
	net, err := chain.Lookup("bitcoin", netName)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "db")
	m, err := Bootstrap(ctx, b, dir, net, &Restorer{DeferSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if !Unsynced(dir) {
		t.Fatal("a deferred restore left no marker")
	}
	checkRestored(t, dir, d.keys)

	// The node stopped before Settle, and a power cut tore one table.
	var sst File
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".sst") {
			sst = f
			break
		}
	}
	if err := os.Truncate(filepath.Join(dir, sst.Name), sst.Size/2); err != nil {
		t.Fatal(err)
	}
	b.resetUploads()
	b.mu.Lock()
	b.gets = nil
	b.mu.Unlock()
	m2, err := Bootstrap(ctx, b, dir, net, &Restorer{DeferSync: true})
	if err != nil || m2 == nil || m2.Key() != m.Key() {
		t.Fatalf("Bootstrap of a marked DB = %v, %v; want %s restored again", m2, err, m.Key())
	}
	checkRestored(t, dir, d.keys)
	b.mu.Lock()
	gets := slices.Clone(b.gets)
	b.mu.Unlock()
	fetched := func(f File) bool {
		return slices.ContainsFunc(gets, func(g string) bool { return strings.HasSuffix(g, f.Key) })
	}
	if !fetched(sst) {
		t.Errorf("the torn table %s was not fetched again (gets %v)", sst.Name, gets)
	}
	for _, f := range m.Files {
		// Opening the DB rewrote Pebble's own small files; the tables
		// are immutable.
		if strings.HasSuffix(f.Name, ".sst") && f.Key != sst.Key && fetched(f) {
			t.Errorf("intact table %s was fetched again", f.Name)
		}
	}

	if err := Settle(dir); err != nil {
		t.Fatal(err)
	}
	if Unsynced(dir) {
		t.Fatal("marker left after Settle")
	}
	// A settled DB is the node's own: kept, not restored.
	if m3, err := Bootstrap(ctx, b, dir, net, &Restorer{DeferSync: true}); err != nil || m3 != nil {
		t.Fatalf("Bootstrap of a settled DB = %v, %v; want it kept", m3, err)
	}

	// Without DeferSync nothing is marked.
	dir2 := filepath.Join(t.TempDir(), "db")
	if _, err := Bootstrap(ctx, b, dir2, net, &Restorer{}); err != nil {
		t.Fatal(err)
	}
	if Unsynced(dir2) {
		t.Error("a synced restore is marked")
	}
}
