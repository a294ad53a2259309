// Package objstore is the narrow bucket interface snapshots are stored
// behind, with backends for a local directory (fs), memory (mem, for
// tests), S3 through aws-sdk-go-v2 (s3) and S3-compatible endpoints
// through minio-go (minio). Every backend passes one acceptance test.
package objstore

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned (wrapped) by Get, Attributes and Delete-free
// lookups of a missing object; test with IsNotFound or errors.Is.
var ErrNotFound = errors.New("objstore: object not found")

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Attrs describe a stored object.
type Attrs struct {
	Size int64
}

// Bucket stores objects by name ("sst/<sha256>", "snapshots/x.json",
// "LATEST"). Its contract, which the acceptance test checks:
//   - Upload is atomic and idempotent: readers see the whole object or
//     none of it, never a partial one; uploading the same name again
//     replaces it whole.
//   - Read-after-write: once Upload returns, Get, Exists, Attributes and
//     Iter see the object.
//   - Get of a missing object fails with an error matching ErrNotFound;
//     Delete of a missing object succeeds.
//   - Iter lists object names under a prefix in lexical order, each
//     once; names are slash-separated and never start with a slash.
//   - Every method stops when ctx ends.
type Bucket interface {
	// Upload stores size bytes read from r under name.
	Upload(ctx context.Context, name string, r io.Reader, size int64) error
	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, name string) (io.ReadCloser, error)
	// GetRange opens length bytes of the object from off.
	GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error)
	// Exists reports whether the object exists.
	Exists(ctx context.Context, name string) (bool, error)
	// Attributes returns the object's size.
	Attributes(ctx context.Context, name string) (Attrs, error)
	// Iter calls fn for each object name with the prefix, in order.
	Iter(ctx context.Context, prefix string, fn func(name string) error) error
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// Name describes the bucket for logs, without secrets.
	Name() string
	// Close releases the backend's resources.
	Close() error
}
