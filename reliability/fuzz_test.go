package reliability

import (
	"bufio"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fuzzTarget is one `func FuzzX(f *testing.F)` of the module.
type fuzzTarget struct {
	pkg  string // import path
	name string
}

var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)

// moduleRoot is the directory holding go.mod, above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// fuzzTargets finds every fuzz target in the module's test files, so that
// a new one joins the soak without being listed here.
func fuzzTargets(t *testing.T, root string) []fuzzTarget {
	t.Helper()
	var out []fuzzTarget
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := "amber/" + filepath.ToSlash(rel)
		if rel == "." {
			pkg = "amber"
		}
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			out = append(out, fuzzTarget{pkg: pkg, name: string(m[1])})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var execsRE = regexp.MustCompile(`execs: (\d+)`)

// TestFuzzTargetsFound keeps the soak's discovery honest: it must see the
// parsers' targets.
func TestFuzzTargetsFound(t *testing.T) {
	found := map[string]bool{}
	for _, f := range fuzzTargets(t, moduleRoot(t)) {
		found[f.pkg+"."+f.name] = true
	}
	for _, want := range []string{"amber/server/rpc.FuzzParse", "amber/internal/chain.FuzzParseBlock", "amber/internal/chain.FuzzParseTx",
		"amber/server/methods.FuzzMethodParams", "amber/snapshot.FuzzParseManifest"} {
		if !found[want] {
			t.Errorf("fuzz target %s not found; found %v", want, found)
		}
	}
}

// TestSoakFuzz runs every fuzz target of the module, one after the other,
// for an equal share of the soak's fuzzing time, and counts their execs.
// A failing input is saved by `go test` under the package's testdata/fuzz
// and fails this test.
func TestSoakFuzz(t *testing.T) {
	if !soak.on {
		t.Skip("runs in `make soak` only (SOAK_DURATION)")
	}
	root := moduleRoot(t)
	targets := fuzzTargets(t, root)
	each := max(10*time.Second, time.Duration(float64(soak.duration)*fuzzShare)/time.Duration(len(targets)))
	for _, ft := range targets {
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), each+3*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-run", "^$", "-fuzz", "^"+ft.name+"$",
			"-fuzztime", each.String(), ft.pkg)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cancel()
		var execs int64
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if m := execsRE.FindStringSubmatch(sc.Text()); m != nil {
				execs, _ = strconv.ParseInt(m[1], 10, 64)
			}
		}
		tally.fuzzed(fuzzRun{pkg: ft.pkg, target: ft.name, execs: execs, took: time.Since(began), ok: err == nil})
		t.Logf("%s %s: %d execs in %v", ft.pkg, ft.name, execs, each)
		if err != nil {
			t.Errorf("go test -fuzz %s %s: %v\n%s", ft.name, ft.pkg, err, tail(string(out), 30))
		}
	}
}
