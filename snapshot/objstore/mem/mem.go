// Package mem is an in-memory objstore.Bucket for unit tests.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"amber/snapshot/objstore"
)

// Bucket keeps objects in a map. The zero value is not usable; call New.
type Bucket struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

var _ objstore.Bucket = (*Bucket)(nil)

// New returns an empty in-memory bucket.
func New() *Bucket { return &Bucket{objects: make(map[string][]byte)} }

// Upload implements objstore.Bucket. The object appears only once all
// size bytes have been read.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("mem: upload %s: negative size %d", name, size)
	}
	var buf bytes.Buffer
	buf.Grow(int(size))
	if _, err := io.Copy(&buf, objstore.ContextReader(ctx, objstore.ExactReader(r, size))); err != nil {
		return fmt.Errorf("mem: upload %s: %w", name, err)
	}
	b.mu.Lock()
	b.objects[name] = buf.Bytes()
	b.mu.Unlock()
	return nil
}

func (b *Bucket) lookup(ctx context.Context, name string) ([]byte, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return nil, err
	}
	b.mu.RLock()
	data, ok := b.objects[name]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", name, objstore.ErrNotFound)
	}
	return data, nil
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	data, err := b.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// GetRange implements objstore.Bucket.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := objstore.CheckRange(off, length); err != nil {
		return nil, err
	}
	data, err := b.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if off >= int64(len(data)) {
		return objstore.EmptyReader(), nil
	}
	data = data[off:]
	if length >= 0 && length < int64(len(data)) {
		data = data[:length]
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Exists implements objstore.Bucket.
func (b *Bucket) Exists(ctx context.Context, name string) (bool, error) {
	_, err := b.lookup(ctx, name)
	if objstore.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Attributes implements objstore.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.Attrs, error) {
	data, err := b.lookup(ctx, name)
	if err != nil {
		return objstore.Attrs{}, err
	}
	return objstore.Attrs{Size: int64(len(data))}, nil
}

// Iter implements objstore.Bucket. It lists a snapshot of the names taken
// when it starts, so fn may modify the bucket.
func (b *Bucket) Iter(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	var names []string
	for name := range b.objects {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	b.mu.RUnlock()
	return objstore.VisitSorted(ctx, names, fn)
}

// Delete implements objstore.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.objects, name)
	b.mu.Unlock()
	return nil
}

// Name implements objstore.Bucket.
func (b *Bucket) Name() string { return "mem" }

// Close implements objstore.Bucket.
func (b *Bucket) Close() error { return nil }
