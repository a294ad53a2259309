package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProject runs every rule over the whole module.
func TestProject(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	vs, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v)
	}
}

// TestRules shows each rule firing on a small module, and staying quiet on
// code that follows it.
func TestRules(t *testing.T) {
	cases := []struct {
		name string
		file string // module-relative path
		src  string
		rule string // "" means no violation expected
	}{
		{"internal imports server", "internal/x/x.go", "// Package x.\npackage x\nimport _ \"m/server/rpc\"\n", "layers"},
		{"builder imports server", "builder/b.go", "// Package builder.\npackage builder\nimport _ \"m/server\"\n", "layers"},
		{"server imports builder", "server/s.go", "// Package server.\npackage server\nimport _ \"m/builder\"\n", "layers"},
		{"server imports internal", "server/s.go", "// Package server.\npackage server\nimport _ \"m/internal/chain\"\n", ""},
		{"statuspage imports server", "server/statuspage/p.go", "// Package statuspage.\npackage statuspage\nimport _ \"m/server\"\n", "server-layers"},
		{"statuspage test imports server", "server/statuspage/p_test.go", "package statuspage_test\nimport _ \"m/server\"\n", ""},
		{"peers imports methods", "server/peers/p.go", "// Package peers.\npackage peers\nimport _ \"m/server/methods\"\n", "server-layers"},
		{"query imports session", "server/query/q.go", "// Package query.\npackage query\nimport _ \"m/server/session\"\n", "server-layers"},
		{"session imports methods", "server/session/s.go", "// Package session.\npackage session\nimport _ \"m/server/methods\"\n", "server-layers"},
		{"methods imports session", "server/methods/m.go", "// Package methods.\npackage methods\nimport _ \"m/server/session\"\n", ""},
		{"server imports session", "server/s.go", "// Package server.\npackage server\nimport _ \"m/server/session\"\n", ""},
		{"pebble outside store", "internal/index/i.go", "// Package index.\npackage index\nimport _ \"github.com/cockroachdb/pebble/v2\"\n", "pebble"},
		{"pebble in store", "internal/store/s.go", "// Package store.\npackage store\nimport _ \"github.com/cockroachdb/pebble/v2\"\n", ""},
		{"s3 sdk outside objstore", "snapshot/p.go", "// Package snapshot.\npackage snapshot\nimport _ \"github.com/minio/minio-go/v7\"\n", "s3"},
		{"s3 sdk in objstore", "snapshot/objstore/s3/s.go", "// Package s3.\npackage s3\nimport _ \"github.com/aws/aws-sdk-go-v2/service/s3\"\n", ""},
		{"stdlib log", "internal/x/x.go", "// Package x.\npackage x\nimport \"log\"\nfunc f() { log.Println() }\n", "log"},
		{"fmt.Println", "internal/x/x.go", "// Package x.\npackage x\nimport \"fmt\"\nfunc f() { fmt.Println(1) }\n", "stdout"},
		{"fmt.Fprintln is fine", "internal/x/x.go", "// Package x.\npackage x\nimport (\"fmt\";\"io\")\nfunc f(w io.Writer) { fmt.Fprintln(w, 1) }\n", ""},
		{"builtin println", "internal/x/x_test.go", "package x\nfunc f() { println(1) }\n", "stdout"},
		{"raw atomic", "server/s.go", "// Package server.\npackage server\nimport \"sync/atomic\"\nvar n int64\nfunc f() { atomic.AddInt64(&n, 1) }\n", "atomic"},
		{"typed atomic", "server/s.go", "// Package server.\npackage server\nimport \"sync/atomic\"\nvar n atomic.Int64\nfunc f() { n.Add(1) }\n", ""},
		{"no package comment", "server/s.go", "package server\n", "doc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, filepath.Join(root, "go.mod"), "module m\n\ngo 1.26\n")
			write(t, filepath.Join(root, tc.file), tc.src)
			if strings.HasSuffix(tc.file, "_test.go") {
				write(t, filepath.Join(root, filepath.Dir(tc.file), "doc.go"), "// Package x.\npackage x\n")
			}
			vs, err := Check(root)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rule == "" {
				for _, v := range vs {
					t.Errorf("unexpected %s", v)
				}
				return
			}
			if len(vs) != 1 || vs[0].Rule != tc.rule {
				t.Errorf("violations %v, want one of rule %s", vs, tc.rule)
			}
		})
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
