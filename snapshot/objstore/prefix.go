package objstore

import (
	"context"
	"io"
	"strings"
)

// WithPrefix returns a Bucket storing every object of b under prefix
// (slashes at either end are ignored): object "x" becomes "prefix/x" in b,
// and Iter strips the prefix again. An empty prefix returns b itself.
func WithPrefix(b Bucket, prefix string) Bucket {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		return b
	}
	return &prefixed{b: b, prefix: prefix + "/"}
}

type prefixed struct {
	b      Bucket
	prefix string
}

var _ Bucket = (*prefixed)(nil)

func (p *prefixed) full(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	return p.prefix + name, nil
}

// Upload implements Bucket.
func (p *prefixed) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	full, err := p.full(name)
	if err != nil {
		return err
	}
	return p.b.Upload(ctx, full, r, size)
}

// Get implements Bucket.
func (p *prefixed) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	full, err := p.full(name)
	if err != nil {
		return nil, err
	}
	return p.b.Get(ctx, full)
}

// GetRange implements Bucket.
func (p *prefixed) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	full, err := p.full(name)
	if err != nil {
		return nil, err
	}
	return p.b.GetRange(ctx, full, off, length)
}

// Exists implements Bucket.
func (p *prefixed) Exists(ctx context.Context, name string) (bool, error) {
	full, err := p.full(name)
	if err != nil {
		return false, err
	}
	return p.b.Exists(ctx, full)
}

// Attributes implements Bucket.
func (p *prefixed) Attributes(ctx context.Context, name string) (Attrs, error) {
	full, err := p.full(name)
	if err != nil {
		return Attrs{}, err
	}
	return p.b.Attributes(ctx, full)
}

// Iter implements Bucket.
func (p *prefixed) Iter(ctx context.Context, prefix string, fn func(name string) error) error {
	return p.b.Iter(ctx, p.prefix+prefix, func(name string) error {
		return fn(strings.TrimPrefix(name, p.prefix))
	})
}

// Delete implements Bucket.
func (p *prefixed) Delete(ctx context.Context, name string) error {
	full, err := p.full(name)
	if err != nil {
		return err
	}
	return p.b.Delete(ctx, full)
}

// Name implements Bucket.
func (p *prefixed) Name() string { return p.b.Name() + "/" + strings.TrimSuffix(p.prefix, "/") }

// Close implements Bucket.
func (p *prefixed) Close() error { return p.b.Close() }
