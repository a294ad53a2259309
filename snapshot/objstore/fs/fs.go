// Package fs is an objstore.Bucket in a local directory. Object "a/b" is
// the file <dir>/a/b. Upload behaves like an atomic PUT: it writes a
// temporary file "<name>.tmp-<random>" beside the target, fsyncs it,
// renames it into place and fsyncs the directory, so a reader (or a
// restart after a crash) sees the old object or the new one, never part of
// one. Temporary files left by a crash are invisible to Get and Iter.
//
// NOTE: a file system cannot hold both "a" and "a/b"; uploading one when
// the other exists fails.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"amber/snapshot/objstore"
)

// tempMarker marks temporary upload files; names containing it are
// refused and skipped.
const tempMarker = ".tmp-"

// Bucket is a directory of objects.
type Bucket struct {
	dir string
}

var _ objstore.Bucket = (*Bucket)(nil)

// New returns a bucket in dir, creating the directory if needed.
func New(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("fs: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fs: bucket dir %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("fs: create bucket dir: %w", err)
	}
	return &Bucket{dir: abs}, nil
}

// Dir returns the bucket's directory.
func (b *Bucket) Dir() string { return b.dir }

// path checks name and returns its file path.
func (b *Bucket) path(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := objstore.CheckName(name); err != nil {
		return "", err
	}
	if strings.Contains(path.Base(name), tempMarker) {
		return "", fmt.Errorf("%w: %q contains %q", objstore.ErrInvalidName, name, tempMarker)
	}
	return filepath.Join(b.dir, filepath.FromSlash(name)), nil
}

// Upload implements objstore.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) (err error) {
	p, err := b.path(ctx, name)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("fs: upload %s: negative size %d", name, size)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("fs: upload %s: %w", name, err)
	}
	f, err := os.CreateTemp(dir, filepath.Base(p)+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("fs: upload %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(f, objstore.ContextReader(ctx, objstore.ExactReader(r, size))); err != nil {
		return fmt.Errorf("fs: upload %s: %w", name, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("fs: upload %s: sync: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("fs: upload %s: close: %w", name, err)
	}
	if err = os.Rename(tmp, p); err != nil {
		return fmt.Errorf("fs: upload %s: %w", name, err)
	}
	if err = syncDir(dir); err != nil {
		return fmt.Errorf("fs: upload %s: %w", name, err)
	}
	return nil
}

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return d.Close()
}

// open opens an object's file, mapping a missing file (or a directory,
// which is a prefix rather than an object) to ErrNotFound.
func (b *Bucket) open(ctx context.Context, name string) (*os.File, fs.FileInfo, error) {
	p, err := b.path(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDir) {
			return nil, nil, fmt.Errorf("fs: %s: %w", name, objstore.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("fs: %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("fs: %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, fmt.Errorf("fs: %s: %w", name, objstore.ErrNotFound)
	}
	return f, fi, nil
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	f, _, err := b.open(ctx, name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange implements objstore.Bucket.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := objstore.CheckRange(off, length); err != nil {
		return nil, err
	}
	f, fi, err := b.open(ctx, name)
	if err != nil {
		return nil, err
	}
	if off >= fi.Size() {
		_ = f.Close()
		return objstore.EmptyReader(), nil
	}
	if length < 0 {
		length = fi.Size() - off
	}
	return &sectionCloser{Reader: io.NewSectionReader(f, off, length), f: f}, nil
}

type sectionCloser struct {
	io.Reader
	f *os.File
}

func (s *sectionCloser) Close() error { return s.f.Close() }

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
	p, err := b.path(ctx, name)
	if err != nil {
		return objstore.Attrs{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDir) {
			return objstore.Attrs{}, fmt.Errorf("fs: %s: %w", name, objstore.ErrNotFound)
		}
		return objstore.Attrs{}, fmt.Errorf("fs: %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return objstore.Attrs{}, fmt.Errorf("fs: %s: %w", name, objstore.ErrNotFound)
	}
	return objstore.Attrs{Size: fi.Size()}, nil
}

// Iter implements objstore.Bucket. It walks only the directory the
// prefix points into, skips temporary files and sorts the names, since a
// directory walk does not give lexical order of full names ("a/b" would
// come before "a.x").
func (b *Bucket) Iter(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	start := b.dir
	if i := strings.LastIndexByte(prefix, '/'); i > 0 && objstore.CheckName(prefix[:i]) == nil {
		start = filepath.Join(b.dir, filepath.FromSlash(prefix[:i]))
	}
	var names []string
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDir) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || strings.Contains(d.Name(), tempMarker) {
			return nil
		}
		rel, err := filepath.Rel(b.dir, p)
		if err != nil {
			return err
		}
		if name := filepath.ToSlash(rel); strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fs: iter %q: %w", prefix, err)
	}
	return objstore.VisitSorted(ctx, names, fn)
}

// Delete implements objstore.Bucket. It also removes the directories the
// deletion left empty, up to the bucket's directory.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	p, err := b.path(ctx, name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, notDir) {
			return nil
		}
		return fmt.Errorf("fs: delete %s: %w", name, err)
	}
	for dir := filepath.Dir(p); dir != b.dir && strings.HasPrefix(dir, b.dir); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty, or in use: leave it
		}
	}
	return nil
}

// Name implements objstore.Bucket.
func (b *Bucket) Name() string { return "file://" + filepath.ToSlash(b.dir) }

// Close implements objstore.Bucket.
func (b *Bucket) Close() error { return nil }
