// Package objtest holds the acceptance test every objstore.Bucket backend
// must pass. Backend tests call AcceptanceTest with an empty bucket.
package objtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"amber/snapshot/objstore"
)

// BigSize is the size of the large object AcceptanceTest streams through
// the bucket; it is above the multipart threshold of the S3 backends.
const BigSize = 20 << 20

// AcceptanceTest checks b against the objstore.Bucket contract. b must be
// empty; the test deletes what it uploads.
func AcceptanceTest(t *testing.T, b objstore.Bucket) {
	ctx := t.Context()

	t.Run("missing", func(t *testing.T) {
		if _, err := b.Get(ctx, "missing"); !objstore.IsNotFound(err) {
			t.Errorf("Get missing: err = %v, want ErrNotFound", err)
		}
		if _, err := b.GetRange(ctx, "missing", 0, 1); !objstore.IsNotFound(err) {
			t.Errorf("GetRange missing: err = %v, want ErrNotFound", err)
		}
		if _, err := b.Attributes(ctx, "missing"); !objstore.IsNotFound(err) {
			t.Errorf("Attributes missing: err = %v, want ErrNotFound", err)
		}
		if ok, err := b.Exists(ctx, "missing"); ok || err != nil {
			t.Errorf("Exists missing = %v, %v; want false, nil", ok, err)
		}
		if err := b.Delete(ctx, "missing"); err != nil {
			t.Errorf("Delete missing: %v", err)
		}
		if names := list(t, b, ""); len(names) != 0 {
			t.Errorf("Iter of empty bucket = %q", names)
		}
	})

	t.Run("upload get overwrite delete", func(t *testing.T) {
		put(t, b, "dir/obj", "hello, world")
		if got := get(t, b, "dir/obj"); got != "hello, world" {
			t.Errorf("Get = %q", got)
		}
		if ok, err := b.Exists(ctx, "dir/obj"); !ok || err != nil {
			t.Errorf("Exists = %v, %v; want true, nil", ok, err)
		}
		if a, err := b.Attributes(ctx, "dir/obj"); err != nil || a.Size != 12 {
			t.Errorf("Attributes = %+v, %v; want size 12", a, err)
		}
		// A prefix of an object's name is not an object.
		if ok, err := b.Exists(ctx, "dir"); ok || err != nil {
			t.Errorf("Exists(dir) = %v, %v; want false, nil", ok, err)
		}
		if _, err := b.Get(ctx, "dir"); !objstore.IsNotFound(err) {
			t.Errorf("Get(dir): err = %v, want ErrNotFound", err)
		}
		put(t, b, "dir/obj", "bye")
		if got := get(t, b, "dir/obj"); got != "bye" {
			t.Errorf("Get after overwrite = %q", got)
		}
		if a, err := b.Attributes(ctx, "dir/obj"); err != nil || a.Size != 3 {
			t.Errorf("Attributes after overwrite = %+v, %v; want size 3", a, err)
		}
		for i := 0; i < 2; i++ { // deleting twice is fine
			if err := b.Delete(ctx, "dir/obj"); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if _, err := b.Get(ctx, "dir/obj"); !objstore.IsNotFound(err) {
			t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
		}
		if names := list(t, b, ""); len(names) != 0 {
			t.Errorf("Iter after Delete = %q", names)
		}
	})

	// The builder overwrites LATEST while nodes read it: a reader opened
	// before the overwrite yields one whole version, never an error.
	t.Run("overwrite while open", func(t *testing.T) {
		put(t, b, "latest", "snapshots/1")
		defer del(t, b, "latest")
		r, err := b.Get(ctx, "latest")
		if err != nil {
			t.Fatal(err)
		}
		put(t, b, "latest", "snapshots/22")
		if got := readAll(t, r); got != "snapshots/1" && got != "snapshots/22" {
			t.Errorf("read across an overwrite = %q, want one whole version", got)
		}
	})

	t.Run("empty object", func(t *testing.T) {
		put(t, b, "empty", "")
		defer del(t, b, "empty")
		if got := get(t, b, "empty"); got != "" {
			t.Errorf("Get = %q", got)
		}
		if a, err := b.Attributes(ctx, "empty"); err != nil || a.Size != 0 {
			t.Errorf("Attributes = %+v, %v; want size 0", a, err)
		}
		if ok, err := b.Exists(ctx, "empty"); !ok || err != nil {
			t.Errorf("Exists = %v, %v", ok, err)
		}
		r, err := b.GetRange(ctx, "empty", 0, 10)
		if err != nil {
			t.Fatalf("GetRange: %v", err)
		}
		if got := readAll(t, r); got != "" {
			t.Errorf("GetRange = %q", got)
		}
	})

	t.Run("range", func(t *testing.T) {
		const data = "0123456789"
		put(t, b, "r", data)
		defer del(t, b, "r")
		for _, tc := range []struct {
			name        string
			off, length int64
			want        string
		}{
			{"head", 0, 3, "012"},
			{"middle", 3, 4, "3456"},
			{"tail", 7, 3, "789"},
			{"past end truncated", 8, 100, "89"},
			{"to end", 4, -1, "456789"},
			{"whole", 0, 10, data},
			{"at end", 10, 5, ""},
			{"beyond end", 20, 5, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := b.GetRange(ctx, "r", tc.off, tc.length)
				if err != nil {
					t.Fatalf("GetRange(%d, %d): %v", tc.off, tc.length, err)
				}
				if got := readAll(t, r); got != tc.want {
					t.Errorf("GetRange(%d, %d) = %q, want %q", tc.off, tc.length, got, tc.want)
				}
			})
		}
		if _, err := b.GetRange(ctx, "r", -1, 2); err == nil {
			t.Error("GetRange with negative offset succeeded")
		}
	})

	t.Run("iter", func(t *testing.T) {
		names := []string{"a", "a.x", "a/b", "a/c/d", "ab", "b/x", "sst/01", "sst/02", "snapshots/1-aa.json", "LATEST"}
		for _, n := range names {
			put(t, b, n+"x", n) // "a" and "a/b" cannot both be files
		}
		defer func() {
			for _, n := range names {
				del(t, b, n+"x")
			}
		}()
		withX := func(ns ...string) []string {
			out := make([]string, len(ns))
			for i, n := range ns {
				out[i] = n + "x"
			}
			slices.Sort(out)
			return out
		}
		all := withX(names...)
		slices.Sort(all)
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"", all},
			{"a", withX("a", "a.x", "a/b", "a/c/d", "ab")},
			{"a/", withX("a/b", "a/c/d")},
			{"a/c", withX("a/c/d")},
			{"a/c/", withX("a/c/d")},
			{"sst/", withX("sst/01", "sst/02")},
			{"sst/0", withX("sst/01", "sst/02")},
			{"sst/01", withX("sst/01")},
			{"snap", withX("snapshots/1-aa.json")},
			{"LATEST", withX("LATEST")},
			{"nothing/", nil},
			{"z", nil},
		} {
			t.Run("prefix "+tc.prefix, func(t *testing.T) {
				if got := list(t, b, tc.prefix); !slices.Equal(got, tc.want) {
					t.Errorf("Iter(%q) = %q, want %q", tc.prefix, got, tc.want)
				}
			})
		}
		// An error from fn stops the iteration and is returned.
		stop := errors.New("stop")
		calls := 0
		err := b.Iter(ctx, "", func(string) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Iter with failing fn: err = %v after %d calls", err, calls)
		}
	})

	t.Run("invalid names", func(t *testing.T) {
		for _, name := range []string{"", "/abs", "a/../b", "..", "../x", "a//b", "trail/", "./a"} {
			err := b.Upload(ctx, name, strings.NewReader("x"), 1)
			if !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("Upload(%q): err = %v, want ErrInvalidName", name, err)
			}
			if _, err := b.Get(ctx, name); !errors.Is(err, objstore.ErrInvalidName) {
				t.Errorf("Get(%q): err = %v, want ErrInvalidName", name, err)
			}
		}
	})

	t.Run("short body", func(t *testing.T) {
		err := b.Upload(ctx, "short", strings.NewReader("abc"), 10)
		if err == nil {
			t.Fatal("Upload of a body shorter than size succeeded")
		}
		if ok, err := b.Exists(ctx, "short"); ok || err != nil {
			t.Errorf("Exists after short upload = %v, %v; want false, nil", ok, err)
		}
	})

	t.Run("big", func(t *testing.T) {
		want := sha256.New()
		err := b.Upload(ctx, "big", io.TeeReader(randReader(BigSize), want), BigSize)
		if err != nil {
			t.Fatalf("Upload: %v", err)
		}
		defer del(t, b, "big")
		if a, err := b.Attributes(ctx, "big"); err != nil || a.Size != BigSize {
			t.Errorf("Attributes = %+v, %v; want size %d", a, err, BigSize)
		}
		r, err := b.Get(ctx, "big")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		got := sha256.New()
		n, err := io.Copy(got, r)
		if cerr := r.Close(); err == nil {
			err = cerr
		}
		if err != nil || n != BigSize {
			t.Fatalf("read %d bytes: %v", n, err)
		}
		if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
			t.Error("big object read back differs")
		}
		// A range across the 5 MiB and 8 MiB part boundaries.
		off := int64(5<<20 - 7)
		r, err = b.GetRange(ctx, "big", off, 3<<20+20)
		if err != nil {
			t.Fatalf("GetRange: %v", err)
		}
		part := readAll(t, r)
		full, _ := io.ReadAll(randReader(off + int64(len(part))))
		if len(part) != 3<<20+20 || part != string(full[off:]) {
			t.Errorf("GetRange of big object: %d bytes, mismatch", len(part))
		}
	})

	t.Run("context canceled", func(t *testing.T) {
		put(t, b, "c", "data")
		defer del(t, b, "c")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with canceled ctx: err = %v, want context.Canceled", op, err)
			}
		}
		check("Upload", b.Upload(cctx, "c2", strings.NewReader("x"), 1))
		_, err := b.Get(cctx, "c")
		check("Get", err)
		_, err = b.GetRange(cctx, "c", 0, 1)
		check("GetRange", err)
		_, err = b.Exists(cctx, "c")
		check("Exists", err)
		_, err = b.Attributes(cctx, "c")
		check("Attributes", err)
		check("Iter", b.Iter(cctx, "", func(string) error { return nil }))
		check("Delete", b.Delete(cctx, "c"))
		if got := get(t, b, "c"); got != "data" {
			t.Errorf("object after canceled Delete = %q", got)
		}
		if ok, _ := b.Exists(ctx, "c2"); ok {
			t.Error("canceled Upload stored an object")
		}

		// Canceling in the middle of a big upload leaves no object.
		mctx, mcancel := context.WithCancel(ctx)
		defer mcancel()
		body := &cancelAfter{r: randReader(BigSize), n: BigSize / 2, cancel: mcancel}
		if err := b.Upload(mctx, "c3", body, BigSize); err == nil {
			t.Error("Upload canceled midway succeeded")
		}
		if ok, err := b.Exists(ctx, "c3"); ok || err != nil {
			t.Errorf("Exists after canceled upload = %v, %v; want false, nil", ok, err)
		}
	})

	if names := list(t, b, ""); len(names) != 0 {
		t.Errorf("objects left after the test: %q", names)
	}
}

// cancelAfter calls cancel once n bytes have been read from r.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// randReader returns size deterministic pseudo-random bytes.
func randReader(size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{'a', 'm', 'b', 'e', 'r'}), size)
}

func put(t *testing.T, b objstore.Bucket, name, data string) {
	t.Helper()
	if err := b.Upload(t.Context(), name, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Upload(%q): %v", name, err)
	}
}

func del(t *testing.T, b objstore.Bucket, name string) {
	t.Helper()
	if err := b.Delete(context.Background(), name); err != nil {
		t.Errorf("Delete(%q): %v", name, err)
	}
}

func get(t *testing.T, b objstore.Bucket, name string) string {
	t.Helper()
	r, err := b.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return readAll(t, r)
}

func readAll(t *testing.T, r io.ReadCloser) string {
	t.Helper()
	data, err := io.ReadAll(r)
	if cerr := r.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

func list(t *testing.T, b objstore.Bucket, prefix string) []string {
	t.Helper()
	var names []string
	if err := b.Iter(t.Context(), prefix, func(name string) error {
		names = append(names, name)
		return nil
	}); err != nil {
		t.Fatalf("Iter(%q): %v", prefix, err)
	}
	return names
}
