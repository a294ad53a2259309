// Package minio is an objstore.Bucket on an S3-compatible endpoint (MinIO,
// Ceph RGW, ...) through minio-go.
package minio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"amber/snapshot/objstore"
)

// Config configures New.
type Config struct {
	// Endpoint is the service's host:port, without a scheme.
	Endpoint string
	// Bucket is the bucket name.
	Bucket string
	// AccessKey and SecretKey are the static credentials.
	AccessKey, SecretKey string
	// Secure selects HTTPS.
	Secure bool
	// Region is the signing region; empty lets minio-go discover it.
	Region string
	// PartSize is the multipart part size in bytes; zero means
	// minio-go's default (objects above 16 MiB go in parts).
	PartSize uint64
}

// Bucket is a bucket on an S3-compatible service.
type Bucket struct {
	client   *minio.Client
	bucket   string
	partSize uint64
	name     string
}

var _ objstore.Bucket = (*Bucket)(nil)

// New returns a bucket for cfg. It does not contact the service.
func New(cfg Config) (*Bucket, error) {
	if cfg.Bucket == "" || cfg.Endpoint == "" {
		return nil, errors.New("minio: endpoint and bucket are required")
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("minio: client for %s: %w", cfg.Endpoint, err)
	}
	scheme := "http"
	if cfg.Secure {
		scheme = "https"
	}
	return &Bucket{
		client:   client,
		bucket:   cfg.Bucket,
		partSize: cfg.PartSize,
		name:     fmt.Sprintf("minio://%s/%s (%s)", cfg.Endpoint, cfg.Bucket, scheme),
	}, nil
}

func code(err error) string { return minio.ToErrorResponse(err).Code }

// wrap adds the operation and name to err, mapping a missing key to
// objstore.ErrNotFound.
func wrap(op, name string, err error) error {
	resp := minio.ToErrorResponse(err)
	if resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket") {
		return fmt.Errorf("minio: %s %s: %w", op, name, objstore.ErrNotFound)
	}
	return fmt.Errorf("minio: %s %s: %w", op, name, err)
}

// Upload implements objstore.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("minio: upload %s: negative size %d", name, size)
	}
	_, err := b.client.PutObject(ctx, b.bucket, name, objstore.ExactReader(r, size), size,
		minio.PutObjectOptions{PartSize: b.partSize})
	if err != nil {
		return wrap("upload", name, err)
	}
	return nil
}

// get opens the object with opts; it makes the request at once (minio-go
// defers it to the first read) so a missing object fails here.
func (b *Bucket) get(ctx context.Context, name string, opts minio.GetObjectOptions) (io.ReadCloser, error) {
	// One GET: minio-go's lazy Object would send a HEAD here and its GET
	// with If-Match at the first Read, which fails when the object is
	// replaced in between, as LATEST is at every publish.
	rc, _, _, err := minio.Core{Client: b.client}.GetObject(ctx, b.bucket, name, opts)
	return rc, err
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return nil, err
	}
	obj, err := b.get(ctx, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, wrap("get", name, err)
	}
	return obj, nil
}

// GetRange implements objstore.Bucket.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return nil, err
	}
	if err := objstore.CheckRange(off, length); err != nil {
		return nil, err
	}
	if length == 0 {
		if _, err := b.Attributes(ctx, name); err != nil {
			return nil, err
		}
		return objstore.EmptyReader(), nil
	}
	var opts minio.GetObjectOptions
	rng := fmt.Sprintf("bytes=%d-", off)
	if length > 0 {
		rng += fmt.Sprint(off + length - 1)
	}
	opts.Set("Range", rng)
	obj, err := b.get(ctx, name, opts)
	if err != nil {
		if code(err) == "InvalidRange" {
			return objstore.EmptyReader(), nil
		}
		return nil, wrap("get range", name, err)
	}
	return obj, nil
}

// Exists implements objstore.Bucket.
func (b *Bucket) Exists(ctx context.Context, name string) (bool, error) {
	_, err := b.Attributes(ctx, name)
	if objstore.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Attributes implements objstore.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.Attrs, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return objstore.Attrs{}, err
	}
	info, err := b.client.StatObject(ctx, b.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return objstore.Attrs{}, wrap("stat", name, err)
	}
	return objstore.Attrs{Size: info.Size}, nil
}

// Iter implements objstore.Bucket.
func (b *Bucket) Iter(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Canceling lctx on return stops minio-go's listing goroutine.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for obj := range b.client.ListObjects(lctx, b.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("minio: list %q: %w", prefix, obj.Err)
		}
		if strings.HasSuffix(obj.Key, "/") {
			continue // a "directory marker" some tools create
		}
		if err := fn(obj.Key); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Delete implements objstore.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return err
	}
	err := b.client.RemoveObject(ctx, b.bucket, name, minio.RemoveObjectOptions{})
	if err != nil && code(err) != "NoSuchKey" {
		return wrap("delete", name, err)
	}
	return nil
}

// Name implements objstore.Bucket.
func (b *Bucket) Name() string { return b.name }

// Close implements objstore.Bucket.
func (b *Bucket) Close() error { return nil }
