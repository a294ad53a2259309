package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ErrInvalidName is returned (wrapped) for an object name no backend may
// store; see CheckName.
var ErrInvalidName = errors.New("objstore: invalid object name")

// CheckName reports whether name is a valid object name: non-empty,
// slash-separated, not starting or ending with a slash, with no empty,
// "." or ".." segment, and no backslash or NUL byte. Every backend refuses
// other names, so a name that works on one backend works on all of them.
func CheckName(name string) error {
	if name == "" || strings.ContainsAny(name, "\\\x00") ||
		strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q", ErrInvalidName, name)
		}
	}
	return nil
}

// CheckRange validates the off and length arguments of GetRange: off must
// not be negative; a negative length means "to the end of the object".
func CheckRange(off, length int64) error {
	if off < 0 {
		return fmt.Errorf("objstore: negative range offset %d", off)
	}
	return nil
}

// ExactReader returns a reader yielding exactly size bytes of r: it fails
// with io.ErrUnexpectedEOF if r ends early. Backends wrap Upload's reader
// in it so a short body never becomes a short object.
func ExactReader(r io.Reader, size int64) io.Reader {
	return &exactReader{r: io.LimitReader(r, size), left: size}
}

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("objstore: body ended %d bytes short: %w", e.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

// EmptyReader returns an empty ReadCloser, for ranges that start at or
// past the end of an object.
func EmptyReader() io.ReadCloser { return io.NopCloser(bytes.NewReader(nil)) }

// ContextReader returns a reader that fails with ctx's error once ctx
// ends, so a long copy stops when its context does.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// CheckCall is the check every backend method starts with: the context
// is still live and the name is valid.
func CheckCall(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return CheckName(name)
}

// VisitSorted calls fn for each name in lexical order, stopping at the
// first error or when ctx ends: the tail of Iter for backends that
// collect names first.
func VisitSorted(ctx context.Context, names []string, fn func(name string) error) error {
	slices.Sort(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}
