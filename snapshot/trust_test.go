package snapshot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayedLatestRefused: someone with write access to the bucket puts
// back an older (validly signed) LATEST. The restorer notices the newer
// trusted manifest, says that it ignores LATEST, and restores the newest;
// when the newer manifest is not trusted, LATEST's snapshot is used.
func TestReplayedLatestRefused(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	b := newMem()
	d := newTestDB(t)
	ms := publishN(t, d, &Publisher{Schema: 1, Bucket: b, SigningKey: priv}, 5, 9)
	newestKeys := d.keys
	b.put(LatestKey, []byte(ms[0].Key())) // the replay

	var log bytes.Buffer
	r := &Restorer{Schema: 1, Bucket: b, TrustedKeys: []ed25519.PublicKey{pub}, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	dest := filepath.Join(t.TempDir(), "r")
	m, err := r.Restore(ctx, dest, expect)
	if err != nil {
		t.Fatal(err)
	}
	if m.Height != 9 {
		t.Fatalf("restored height %d from a replayed LATEST, want the newest, 9", m.Height)
	}
	checkRestored(t, dest, newestKeys)
	if !strings.Contains(log.String(), "ignoring LATEST as replayed") || !strings.Contains(log.String(), ms[0].Key()) {
		t.Errorf("no clear log line about the replayed LATEST:\n%s", log.String())
	}

	// A newer manifest that is not signed by a trusted key does not win.
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	forged := *ms[1]
	forged.Height, forged.Block = 12, blockHash(12)
	if err := forged.Sign(otherPriv); err != nil {
		t.Fatal(err)
	}
	body, _ := forged.Marshal()
	b.put(forged.Key(), body)
	b.put(LatestKey, []byte(ms[1].Key()))
	log.Reset()
	m, err = r.Restore(ctx, filepath.Join(t.TempDir(), "r"), expect)
	if err != nil {
		t.Fatal(err)
	}
	if m.Height != 9 || !strings.Contains(log.String(), "not signed by a trusted key") {
		t.Fatalf("restored %d with a forged newer manifest in the bucket, want 9; log:\n%s", m.Height, log.String())
	}
}

// TestUnsignedRefusedWhenKeysRequired: with trusted keys configured and
// only unsigned manifests in the bucket, nothing is restored and the
// error says why.
func TestUnsignedRefusedWhenKeysRequired(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	b := newMem()
	publishN(t, newTestDB(t), &Publisher{Schema: 1, Bucket: b}, 3)
	r := &Restorer{Schema: 1, Bucket: b, TrustedKeys: []ed25519.PublicKey{pub}}
	_, err := r.Restore(context.Background(), filepath.Join(t.TempDir(), "r"), expect)
	if err == nil || !strings.Contains(err.Error(), "unsigned") || !strings.Contains(err.Error(), "no valid manifest") {
		t.Fatalf("restore of an unsigned snapshot with keys required: %v", err)
	}
}

// unreachable is a bucket whose objects cannot be read while down is
// set, as when the endpoint stops answering mid-download.
type unreachable struct {
	*memBucket
	down bool
}

var errRefused = errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")

func (b *unreachable) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if b.down && strings.HasPrefix(name, ObjectPrefix) {
		return nil, errRefused
	}
	return b.memBucket.Get(ctx, name)
}

func (b *unreachable) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if b.down && strings.HasPrefix(name, ObjectPrefix) {
		return nil, errRefused
	}
	return b.memBucket.GetRange(ctx, name, off, length)
}

// TestRestoreBucketDown: a bucket that stops answering in the middle of a
// restore is not a broken snapshot. Restore fails with the transport
// error (not ErrNoSnapshot, which would send the node to sync from
// genesis) and a later attempt restores the newest snapshot.
func TestRestoreBucketDown(t *testing.T) {
	ctx := context.Background()
	mem := newMem()
	d := newTestDB(t)
	publishN(t, d, &Publisher{Schema: 1, Bucket: mem}, 1, 2)
	b := &unreachable{memBucket: mem, down: true}
	r := &Restorer{Schema: 1, Bucket: b}
	dest := filepath.Join(t.TempDir(), "r")
	_, err := r.Restore(ctx, dest, expect)
	if err == nil || errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("restore from an unreachable bucket: %v; want the transport error and no ErrNoSnapshot", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dest created by a failed restore: %v", err)
	}
	b.down = false
	m, err := r.Restore(ctx, dest, expect)
	if err != nil || m.Height != 2 {
		t.Fatalf("restore once the bucket is back: %v, %v", m, err)
	}
	checkRestored(t, dest, d.keys)
}
