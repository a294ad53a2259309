package store

import (
	"errors"
	"slices"
	"testing"
)

func TestPrefixEnd(t *testing.T) {
	cases := []struct {
		prefix, want string
		open         bool // want nil: no upper bound
	}{
		{"", "", true},
		{"a", "b", false},
		{"ab", "ac", false},
		{"a\xff", "b", false},
		{"a\xff\xff", "b", false},
		{"\x00", "\x01", false},
		{"\xfe\xff", "\xff", false},
		{"\xff", "", true},
		{"\xff\xff", "", true},
	}
	for _, tc := range cases {
		got := PrefixEnd([]byte(tc.prefix))
		if tc.open != (got == nil) || string(got) != tc.want {
			t.Errorf("PrefixEnd(%q) = %q (nil %v), want %q (nil %v)", tc.prefix, got, got == nil, tc.want, tc.open)
		}
	}
	p := []byte("ab")
	PrefixEnd(p)
	if string(p) != "ab" {
		t.Errorf("PrefixEnd modified its argument: %q", p)
	}
}

// scanKeys is the sorted key set the read tests run on.
var scanKeys = []string{
	"\x00",
	"a", "a/1", "a/2", "a/3", "a\xff", "a\xff\xff",
	"b", "b/1",
	"\xff", "\xff\xff",
}

// readers returns the same contents as a DB, a Snapshot (taken before a
// later write the snapshot must not see) and an indexed batch (holding part
// of the keys itself), so every read test runs on each Reader.
func readers(t *testing.T) map[string]Reader {
	t.Helper()
	var kv []string
	for _, k := range scanKeys {
		kv = append(kv, k, "v"+k)
	}
	db := openMem(t)
	put(t, db, kv...)

	dbs := openMem(t)
	put(t, dbs, kv...)
	snap := dbs.NewSnapshot()
	t.Cleanup(func() { snap.Close() })
	put(t, dbs, "a/25", "later", "c", "later")

	half := len(kv) / 4 * 2 // an even split: whole pairs
	dbb := openMem(t)
	put(t, dbb, kv[:half]...)
	put(t, dbb, "a/9", "deleted by the batch")
	b := dbb.NewIndexedBatch()
	t.Cleanup(func() { b.Close() })
	for i := half; i < len(kv); i += 2 {
		if err := b.Set([]byte(kv[i]), []byte(kv[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete([]byte("a/9")); err != nil {
		t.Fatal(err)
	}
	return map[string]Reader{"db": db, "snapshot": snap, "indexed batch": b}
}

// want is the "k=v" list of the given keys as readers() stores them.
func want(keys ...string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"=v"+k)
	}
	return out
}

func TestScan(t *testing.T) {
	cases := []struct {
		name   string
		prefix string
		want   []string
	}{
		{"empty prefix is everything", "", want(scanKeys...)},
		{"separator prefix", "a/", want("a/1", "a/2", "a/3")},
		{"single byte prefix", "a", want("a", "a/1", "a/2", "a/3", "a\xff", "a\xff\xff")},
		{"prefix ending in 0xff", "a\xff", want("a\xff", "a\xff\xff")},
		{"all 0xff prefix", "\xff", want("\xff", "\xff\xff")},
		{"zero byte", "\x00", want("\x00")},
		{"exact key", "a/2", want("a/2")},
		{"no match", "c", nil},
		{"longer than keys", "a/1/x", nil},
	}
	for rname, r := range readers(t) {
		for _, tc := range cases {
			t.Run(rname+"/"+tc.name, func(t *testing.T) {
				if got := scanList(t, r, []byte(tc.prefix)); !slices.Equal(got, tc.want) {
					t.Errorf("Scan(%q) = %s, want %s", tc.prefix, keysOf(got), keysOf(tc.want))
				}
			})
		}
	}
}

func TestScanRange(t *testing.T) {
	cases := []struct {
		name         string
		lower, upper []byte
		want         []string
	}{
		{"both bounds", []byte("a/1"), []byte("a/3"), want("a/1", "a/2")},
		{"between keys", []byte("a/15"), []byte("a/25"), want("a/2")},
		{"open lower", nil, []byte("a/1"), want("\x00", "a")},
		{"open upper", []byte("b"), nil, want("b", "b/1", "\xff", "\xff\xff")},
		{"both open", nil, nil, want(scanKeys...)},
		{"empty range", []byte("a/2"), []byte("a/2"), nil},
		{"empty lower bound", []byte{}, []byte("a/1"), want("\x00", "a")},
		{"empty upper bound", nil, []byte{}, nil},
		{"inverted bounds", []byte("b"), []byte("a"), nil},
	}
	for rname, r := range readers(t) {
		for _, tc := range cases {
			t.Run(rname+"/"+tc.name, func(t *testing.T) {
				var got []string
				err := ScanRange(r, tc.lower, tc.upper, func(k, v []byte) error {
					got = append(got, string(k)+"="+string(v))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("ScanRange(%q, %q) = %s, want %s", tc.lower, tc.upper, keysOf(got), keysOf(tc.want))
				}
			})
		}
	}
}

func TestScanStop(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name    string
		ret     error // returned by fn on the second key
		wantErr error
	}{
		{"ErrStop ends cleanly", ErrStop, nil},
		{"wrapped ErrStop ends cleanly", errors.Join(ErrStop), nil},
		{"caller error is returned", boom, boom},
	}
	for rname, r := range readers(t) {
		for _, tc := range cases {
			t.Run(rname+"/"+tc.name, func(t *testing.T) {
				n := 0
				err := r.Scan([]byte("a"), func(k, v []byte) error {
					n++
					if n == 2 {
						return tc.ret
					}
					return nil
				})
				if n != 2 {
					t.Errorf("fn called %d times, want 2", n)
				}
				if tc.wantErr == nil && err != nil || tc.wantErr != nil && err != tc.wantErr {
					t.Errorf("Scan = %v, want %v", err, tc.wantErr)
				}
			})
		}
	}
}

func TestLast(t *testing.T) {
	cases := []struct {
		prefix string
		want   string // "" for ErrNotFound
	}{
		{"a/", "a/3"},
		{"a", "a\xff\xff"},
		{"a\xff", "a\xff\xff"},
		{"b", "b/1"},
		{"\xff", "\xff\xff"},
		{"", "\xff\xff"},
		{"\x00", "\x00"},
		{"c", ""},
		{"a/4", ""},
	}
	for rname, r := range readers(t) {
		for _, tc := range cases {
			t.Run(rname+"/"+tc.prefix, func(t *testing.T) {
				k, v, err := Last(r, []byte(tc.prefix))
				if tc.want == "" {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("Last(%q) = %q, %v; want ErrNotFound", tc.prefix, k, err)
					}
					return
				}
				if err != nil || string(k) != tc.want || string(v) != "v"+tc.want {
					t.Errorf("Last(%q) = %q %q %v; want %q", tc.prefix, k, v, err, tc.want)
				}
			})
		}
	}
}

// TestIterator drives an Iterator through a script of moves; each step
// gives the key it must land on ("" for off the end).
func TestIterator(t *testing.T) {
	type step struct {
		op, arg string // op: first, last, next, prev, seekge, seeklt
		want    string
	}
	cases := []struct {
		name  string
		opts  *IterOptions
		steps []step
	}{
		{"unbounded forward and back", nil, []step{
			{"first", "", "\x00"}, {"next", "", "a"}, {"prev", "", "\x00"}, {"prev", "", ""},
			{"last", "", "\xff\xff"}, {"prev", "", "\xff"}, {"next", "", "\xff\xff"}, {"next", "", ""},
		}},
		{"seeks", nil, []step{
			{"seekge", "a/15", "a/2"}, {"seekge", "a/2", "a/2"}, {"seeklt", "a/2", "a/1"},
			{"seeklt", "a0", "a/3"}, {"seeklt", "b", "a\xff\xff"}, {"seekge", "\xff\xff\x00", ""},
			{"seeklt", "\x00", ""}, {"seeklt", "", ""},
		}},
		{"prefix bounds", PrefixOptions([]byte("a/")), []step{
			{"first", "", "a/1"}, {"prev", "", ""},
			{"last", "", "a/3"}, {"next", "", ""},
			{"seekge", "", "a/1"}, {"seekge", "b", ""},
			{"seeklt", "\xff", "a/3"}, {"seeklt", "a/1", ""},
			{"seeklt", "a/3", "a/2"}, {"prev", "", "a/1"}, {"prev", "", ""},
		}},
		{"last with prefix by SeekLT of PrefixEnd", &IterOptions{}, []step{
			{"seeklt", string(PrefixEnd([]byte("a"))), "a\xff\xff"},
			{"seeklt", string(PrefixEnd([]byte("a/"))), "a/3"},
		}},
		{"range a..b", &IterOptions{Lower: []byte("a/2"), Upper: []byte("b/1")}, []step{
			{"first", "", "a/2"}, {"next", "", "a/3"}, {"next", "", "a\xff"}, {"next", "", "a\xff\xff"},
			{"next", "", "b"}, {"next", "", ""},
			{"last", "", "b"}, {"prev", "", "a\xff\xff"},
		}},
	}
	for rname, r := range readers(t) {
		for _, tc := range cases {
			t.Run(rname+"/"+tc.name, func(t *testing.T) {
				it, err := r.NewIter(tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				defer it.Close()
				for i, s := range tc.steps {
					var ok bool
					switch s.op {
					case "first":
						ok = it.First()
					case "last":
						ok = it.Last()
					case "next":
						ok = it.Next()
					case "prev":
						ok = it.Prev()
					case "seekge":
						ok = it.SeekGE([]byte(s.arg))
					case "seeklt":
						ok = it.SeekLT([]byte(s.arg))
					default:
						t.Fatalf("bad op %q", s.op)
					}
					got := ""
					if ok {
						got = string(it.Key())
						if v := string(it.Value()); v != "v"+got {
							t.Errorf("step %d: value %q at %q", i, v, got)
						}
					}
					if ok != it.Valid() || got != s.want {
						t.Fatalf("step %d %s(%q): at %q (ok %v, valid %v), want %q", i, s.op, s.arg, got, ok, it.Valid(), s.want)
					}
				}
				if err := it.Error(); err != nil {
					t.Fatal(err)
				}
				if err := it.Close(); err != nil {
					t.Fatal(err)
				}
				if err := it.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
				if it.First() || it.Valid() || it.Key() != nil || !errors.Is(it.Error(), ErrClosed) {
					t.Error("closed iterator still usable")
				}
			})
		}
	}
}

// TestReverseScan walks a prefix backwards, as "newest first" queries do.
func TestReverseScan(t *testing.T) {
	for rname, r := range readers(t) {
		t.Run(rname, func(t *testing.T) {
			it, err := r.NewIter(PrefixOptions([]byte("a")))
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			var got []string
			for ok := it.Last(); ok; ok = it.Prev() {
				got = append(got, string(it.Key())+"="+string(it.Value()))
			}
			w := want("a", "a/1", "a/2", "a/3", "a\xff", "a\xff\xff")
			slices.Reverse(w)
			if !slices.Equal(got, w) {
				t.Errorf("reverse = %s, want %s", keysOf(got), keysOf(w))
			}
		})
	}
}

// TestIterBoundsCopied: changing the caller's bound slices after NewIter
// does not move the iterator's bounds.
func TestIterBoundsCopied(t *testing.T) {
	db := openMem(t)
	put(t, db, "a", "1", "b", "2", "c", "3")
	lower, upper := []byte("b"), []byte("c")
	it, err := db.NewIter(&IterOptions{Lower: lower, Upper: upper})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	lower[0], upper[0] = 'a', 'z'
	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		got = append(got, string(it.Key()))
	}
	if !slices.Equal(got, []string{"b"}) {
		t.Errorf("keys = %q, want [b]", got)
	}
}
