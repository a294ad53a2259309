// Package lint enforces Amber's project rules that go vet does not know:
// the import boundaries of DESIGN.md, no printing to stdout from libraries,
// no raw sync/atomic functions, no stdlib log, and a package comment on
// every package. Its test runs the rules over the whole module, so
// `go test ./...` fails when a rule is broken.
package lint

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Violation is one broken rule at one place.
type Violation struct {
	Pos  string // file:line, relative to the module root
	Rule string
	Msg  string
}

func (v Violation) String() string { return fmt.Sprintf("%s: [%s] %s", v.Pos, v.Rule, v.Msg) }

// boundary forbids packages under From (module-relative directory prefix)
// from importing paths with one of the prefixes in Deny, except packages
// under one of Allow.
type boundary struct {
	rule     string
	from     []string
	allow    []string
	deny     []string
	nonTests bool // the rule applies only to non-test files
	exact    bool // deny only the paths themselves, not their subpackages
	why      string
}

func boundaries(module string) []boundary {
	m := func(p string) string { return module + "/" + p }
	return []boundary{
		{rule: "layers", from: []string{"internal/"}, deny: []string{m("builder"), m("server"), m("snapshot")},
			why: "internal packages are shared by builder and server and must not depend on them"},
		{rule: "layers", from: []string{"builder/"}, deny: []string{m("server")},
			why: "builder and server never import each other"},
		{rule: "layers", from: []string{"server/"}, deny: []string{m("builder")},
			why: "builder and server never import each other"},
		// server/ composes its packages; they never import it or climb the
		// serving stack: transport and rpc carry messages, cost prices
		// them, query reads the data, session runs connections and
		// subscriptions, methods answers through query for a session.
		{rule: "server-layers", nonTests: true, exact: true, deny: []string{m("server")},
			from: []string{"server/cost/", "server/mempool/", "server/methods/", "server/peers/", "server/query/",
				"server/rpc/", "server/session/", "server/statuspage/", "server/transport/"},
			why: "only the server package composes the server's packages"},
		{rule: "server-layers", from: []string{"server/cost/", "server/query/", "server/rpc/", "server/transport/", "server/mempool/"},
			deny: []string{m("server/session"), m("server/methods"), m("server/peers"), m("server/statuspage")},
			why:  "the layers under sessions know nothing of sessions, methods or peers"},
		{rule: "server-layers", from: []string{"server/session/"}, deny: []string{m("server/methods"), m("server/peers"), m("server/statuspage")},
			why: "sessions run whatever method table they are given"},
		{rule: "server-layers", from: []string{"server/peers/", "server/statuspage/"}, deny: []string{m("server/session"), m("server/methods")},
			why: "peers and the status page are used by the methods and the server, not the other way"},
		{rule: "pebble", from: []string{""}, allow: []string{"internal/store/"}, nonTests: true,
			deny: []string{"github.com/cockroachdb/pebble"},
			why:  "only internal/store talks to Pebble"},
		{rule: "s3", from: []string{""}, allow: []string{"snapshot/objstore/", "internal/testenv/"}, nonTests: true,
			deny: []string{"github.com/aws/aws-sdk-go-v2", "github.com/minio/minio-go"},
			why:  "only the objstore backends (and the test harness) use an S3 SDK"},
		{rule: "log", from: []string{""}, exact: true, deny: []string{"log"},
			why: "use log/slog with a logger passed in"},
	}
}

var rawAtomic = []string{"Add", "Load", "Store", "Swap", "CompareAndSwap", "And", "Or"}

// Check parses every Go file under root (the module root) and returns the
// violations, sorted by position.
func Check(root string) ([]Violation, error) {
	module, err := modulePath(root)
	if err != nil {
		return nil, err
	}
	var out []Violation
	pkgDoc := map[string]bool{} // directory -> has a package comment
	pkgSeen := map[string]bool{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("lint: parse %s: %w", rel, err)
		}
		dir := filepath.ToSlash(filepath.Dir(rel)) + "/"
		if dir == "./" {
			dir = ""
		}
		isTest := strings.HasSuffix(name, "_test.go")
		if !isTest {
			pkgSeen[dir] = true
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				pkgDoc[dir] = true
			}
		}
		out = append(out, checkFile(fset, f, rel, dir, module, isTest)...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for dir := range pkgSeen {
		if !pkgDoc[dir] {
			out = append(out, Violation{Pos: dir, Rule: "doc", Msg: "package has no package comment (add a doc.go)"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos < out[j].Pos })
	return out, nil
}

func checkFile(fset *token.FileSet, f *ast.File, rel, dir, module string, isTest bool) []Violation {
	var out []Violation
	pos := func(p token.Pos) string { return fmt.Sprintf("%s:%d", rel, fset.Position(p).Line) }
	names := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		local := path[strings.LastIndex(path, "/")+1:]
		if imp.Name != nil {
			local = imp.Name.Name
		}
		names[local] = path
		for _, b := range boundaries(module) {
			if b.nonTests && isTest {
				continue
			}
			if !hasPrefix(dir, b.from) || hasPrefix(dir, b.allow) {
				continue
			}
			for _, d := range b.deny {
				if path == d || (!b.exact && strings.HasPrefix(path, d+"/")) {
					out = append(out, Violation{Pos: pos(imp.Pos()), Rule: b.rule, Msg: fmt.Sprintf("imports %s: %s", path, b.why)})
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		switch fn := call.Fun.(type) {
		case *ast.Ident:
			if fn.Name == "print" || fn.Name == "println" {
				out = append(out, Violation{Pos: pos(call.Pos()), Rule: "stdout", Msg: "builtin " + fn.Name + " writes to stderr unstructured; use the logger"})
			}
		case *ast.SelectorExpr:
			pkg, ok := fn.X.(*ast.Ident)
			if !ok {
				return true
			}
			switch names[pkg.Name] {
			case "fmt":
				if fn.Sel.Name == "Print" || fn.Sel.Name == "Printf" || fn.Sel.Name == "Println" {
					out = append(out, Violation{Pos: pos(call.Pos()), Rule: "stdout", Msg: "fmt." + fn.Sel.Name + " writes to the process's stdout; write to an io.Writer passed in, or log"})
				}
			case "sync/atomic":
				for _, p := range rawAtomic {
					if strings.HasPrefix(fn.Sel.Name, p) {
						out = append(out, Violation{Pos: pos(call.Pos()), Rule: "atomic", Msg: "atomic." + fn.Sel.Name + " on a plain integer; use the typed atomic.Int64/Bool/Pointer"})
						break
					}
				}
			}
		}
		return true
	})
	return out
}

func hasPrefix(dir string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(dir, p) {
			return true
		}
	}
	return false
}

func modulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("lint: read go.mod: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("lint: no module line in %s", filepath.Join(root, "go.mod"))
}
