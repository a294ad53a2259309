package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The cdktf package has, per resource and data source, a lib/<name>/index.js
// whose generated code names every configurable field in snake case with
// whether it is a block and how it is stored, and getters for every field
// (computed ones included); its .jsii assembly says which configurable
// fields are optional. Together they give the provider's schema.

var (
	reAttr     = regexp.MustCompile(`([a-z0-9_]+): \{ value: (.+?), isBlock: (true|false), type: "(\w+)", storageClassType: "(\w+)", \}`)
	reField    = regexp.MustCompile(`(?:this\._|struct\.)([A-Za-z0-9]+)`)
	reElemFn   = regexp.MustCompile(`([\w.]*?)\b([a-z][A-Za-z0-9]*)ToHclTerraform\b`)
	reConfig   = regexp.MustCompile(`this\._([A-Za-z0-9]+) = config\.([A-Za-z0-9]+);`)
	reGetter   = regexp.MustCompile(`(?:^|[ ;}]) ?get ([A-Za-z0-9_]+)\(\) \{ return ([^;]*); \}`)
	reNew      = regexp.MustCompile(`this\._([A-Za-z0-9]+) = new ([A-Za-z0-9.]+)\(this, "([a-z0-9_]+)"(?:, (true|false))?\);`)
	reListElem = regexp.MustCompile(`get\((?:index|key)\) \{ return new ([A-Za-z0-9]+)\(`)
	reTFType   = regexp.MustCompile(`^(\w+)\.tfResourceType = "([a-z0-9_]+)";`)
	reHead     = regexp.MustCompile(`^(?:class (\w+) extends ([\w.]+) \{|function (\w+)ToHclTerraform\(struct\) \{)`)
	reSpace    = regexp.MustCompile(`\s+`)
	reAttrCall = regexp.MustCompile(`^(?:cdktf\.Token\.as\w+\()?(?:cdktf\.Fn\.tolist\()?this\.(\w+)\('([a-z0-9_]+)'\)\)*$`)
)

type hclField struct {
	name, camel, value, kind, storage string
	isBlock                           bool
}

type jsClass struct {
	name, base string
	synth      []hclField
	getters    [][2]string // camel name, return expression, in source order
	news       map[string]newExpr
	listElem   string
	configName map[string]string // field -> jsii property, where jsii renamed it
}

type newExpr struct {
	class, name string
	set         bool
}

type jsFile struct {
	dir     string
	funcs   map[string][]hclField
	classes map[string]*jsClass
	tfTypes map[string]string
}

func newJSFile(dir string) *jsFile {
	return &jsFile{dir: dir, funcs: map[string][]hclField{}, classes: map[string]*jsClass{}, tfTypes: map[string]string{}}
}

// parse adds the declarations in one generated .js file (large resources
// spread their structs over several).
func (f *jsFile) parse(src string) {
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		if m := reTFType.FindStringSubmatch(lines[i]); m != nil {
			f.tfTypes[m[1]] = m[2]
			continue
		}
		m := reHead.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(lines) && lines[j] != "}" {
			j++
		}
		body := reSpace.ReplaceAllString(strings.Join(lines[i:j+1], " "), " ")
		i = j
		if m[3] != "" {
			f.funcs[m[3]] = parseFields(body)
			continue
		}
		c := &jsClass{name: m[1], base: m[2], news: map[string]newExpr{}, configName: map[string]string{}}
		for _, cm := range reConfig.FindAllStringSubmatch(body, -1) {
			c.configName[cm[1]] = cm[2]
		}
		if k := strings.Index(body, "synthesizeHclAttributes() {"); k >= 0 {
			c.synth = parseFields(body[k:])
		}
		for _, g := range reGetter.FindAllStringSubmatch(body, -1) {
			c.getters = append(c.getters, [2]string{g[1], g[2]})
		}
		for _, n := range reNew.FindAllStringSubmatch(body, -1) {
			c.news[n[1]] = newExpr{class: n[2], name: n[3], set: n[4] == "true"}
		}
		if le := reListElem.FindStringSubmatch(body); le != nil {
			c.listElem = le[1]
		}
		f.classes[c.name] = c
	}
}

func parseFields(body string) []hclField {
	var out []hclField
	for _, m := range reAttr.FindAllStringSubmatch(body, -1) {
		fl := hclField{name: m[1], value: m[2], isBlock: m[3] == "true", kind: m[4], storage: m[5]}
		if fm := reField.FindAllStringSubmatch(fl.value, -1); fm != nil {
			fl.camel = fm[len(fm)-1][1]
		}
		out = append(out, fl)
	}
	return out
}

// jsiiTypes maps an interface's name to its properties' optional flags.
type jsiiTypes map[string]map[string]bool

// readJSII returns the interfaces and, per class, the name of the interface
// its constructor takes as config (usually <Class>Config, but jsii renames
// it where that name is taken).
func readJSII(path string) (jsiiTypes, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var asm struct {
		Types map[string]struct {
			Name       string `json:"name"`
			Kind       string `json:"kind"`
			Properties []struct {
				Name     string `json:"name"`
				Optional bool   `json:"optional"`
			} `json:"properties"`
			Initializer struct {
				Parameters []struct {
					Name string `json:"name"`
					Type struct {
						FQN string `json:"fqn"`
					} `json:"type"`
				} `json:"parameters"`
			} `json:"initializer"`
		} `json:"types"`
	}
	if err := json.Unmarshal(b, &asm); err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", path, err)
	}
	out := jsiiTypes{}
	configs := map[string]string{}
	for _, t := range asm.Types {
		if t.Kind == "class" {
			for _, p := range t.Initializer.Parameters {
				if p.Name == "config" && p.Type.FQN != "" {
					configs[t.Name] = p.Type.FQN[strings.LastIndex(p.Type.FQN, ".")+1:]
				}
			}
		}
		if t.Kind != "interface" {
			continue
		}
		props := map[string]bool{}
		for _, p := range t.Properties {
			props[p.Name] = p.Optional
		}
		out[t.Name] = props
	}
	return out, configs, nil
}

// extractor builds blocks and records what it could not understand, so
// that a change in the generated code fails the install instead of
// silently dropping fields.
type extractor struct {
	jsii     jsiiTypes
	problems []string
	// dataSource is set while a data source's blocks are built.
	dataSource bool
}

func (x *extractor) problem(format string, args ...any) {
	x.problems = append(x.problems, fmt.Sprintf(format, args...))
}

// Extract reads the unpacked npm package in dir and returns the schema.
func Extract(dir string) (*Schema, error) {
	jsii, configs, err := readJSII(filepath.Join(dir, ".jsii"))
	if err != nil {
		return nil, fmt.Errorf("read the cdktf assembly: %w", err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "lib"))
	if err != nil {
		return nil, fmt.Errorf("read the cdktf package: %w", err)
	}
	x := &extractor{jsii: jsii}
	s := &Schema{Resources: map[string]Block{}, DataSources: map[string]Block{}}
	providers := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		f := newJSFile(e.Name())
		err := filepath.WalkDir(filepath.Join(dir, "lib", e.Name()), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.parse(string(src))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the cdktf package: %w", err)
		}
		for _, c := range f.classes {
			switch c.base {
			case "cdktf.TerraformResource", "cdktf.TerraformDataSource":
				tf, ok := f.tfTypes[c.name]
				if !ok {
					x.problem("%s: class %s has no tfResourceType", f.dir, c.name)
					continue
				}
				iface, ok := configs[c.name]
				if !ok {
					x.problem("%s: class %s has no config interface", f.dir, c.name)
					continue
				}
				x.dataSource = c.base == "cdktf.TerraformDataSource"
				b := x.block(f, c.synth, iface, c)
				if c.base == "cdktf.TerraformResource" {
					s.Resources[tf] = b
				} else {
					s.DataSources[tf] = b
				}
			case "cdktf.TerraformProvider":
				var synth []hclField
				for _, fl := range c.synth {
					if fl.name != "alias" { // a meta-argument, not part of the schema
						synth = append(synth, fl)
					}
				}
				// Provider blocks are plain structs with nothing computed.
				x.dataSource = false
				s.Provider = x.block(f, synth, configs[c.name], &jsClass{name: c.name})
				providers++
			}
		}
	}
	if providers != 1 {
		x.problem("found %d provider classes, want 1", providers)
	}
	if len(x.problems) > 0 {
		n := min(len(x.problems), 20)
		return nil, fmt.Errorf("the cdktf package is not in the expected shape (%d problems):\n  %s", len(x.problems), strings.Join(x.problems[:n], "\n  "))
	}
	return s, nil
}

var alwaysComputed = map[string]bool{"id": true, "tags_all": true, "region": true}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// block is the block of a resource, data source or nested block: cfg are its
// configurable fields, iface the jsii interface saying which are optional,
// out the generated class whose getters also list the computed-only ones.
func (x *extractor) block(f *jsFile, cfg []hclField, iface string, out *jsClass) Block {
	var b Block
	optional, ok := x.jsii[iface]
	if !ok {
		x.problem("%s: no jsii interface %s", f.dir, iface)
	}
	configured := map[string]bool{}
	for _, fl := range cfg {
		configured[fl.camel] = true
		prop := fl.camel
		if renamed, ok := out.configName[fl.camel]; ok {
			prop = renamed
		}
		opt, ok := optional[prop]
		if !ok {
			x.problem("%s: %s.%s (%s) is not in the jsii interface", f.dir, iface, fl.camel, fl.name)
		}
		if !fl.isBlock {
			t, err := storageType(fl.storage, fl.kind)
			if err != nil {
				x.problem("%s: %s.%s: %v", f.dir, iface, fl.name, err)
				continue
			}
			// The generated code does not record whether an optional
			// argument is also computed. id, tags_all and region always
			// are in this provider, and so are nearly all optional
			// arguments of data sources (filters that the read fills in).
			b.Attributes = append(b.Attributes, Attr{
				Name: fl.name, Type: t, Required: !opt, Optional: opt,
				Computed: opt && (x.dataSource || alwaysComputed[fl.name]),
			})
			continue
		}
		var em []string
		for _, m := range reElemFn.FindAllStringSubmatch(fl.value, -1) {
			if m[1] != "cdktf." {
				em = m[1:]
			}
		}
		if em == nil {
			x.problem("%s: %s.%s: no element type in %q", f.dir, iface, fl.name, fl.value)
			continue
		}
		elem := upperFirst(em[1])
		nb := NestedBlock{Name: fl.name}
		switch fl.kind {
		case "list":
			nb.Nesting = "list"
			if !strings.Contains(fl.value, "listMapperHcl(") {
				nb.MaxItems = 1
			}
		case "set":
			nb.Nesting = "set"
		case "struct":
			nb.Nesting = "single"
		case "map":
			nb.Nesting = "map"
		default:
			x.problem("%s: %s.%s: unknown block kind %q", f.dir, iface, fl.name, fl.kind)
			continue
		}
		if !opt && nb.Nesting != "map" {
			nb.MinItems = 1
		}
		elemClass := f.classes[elem+"OutputReference"]
		if elemClass == nil {
			if out.base != "" {
				x.problem("%s: no class %sOutputReference", f.dir, elem)
				continue
			}
			elemClass = &jsClass{name: elem}
		}
		nb.Block = x.block(f, f.funcs[em[1]], elem, elemClass)
		if nb.Nesting == "set" && nb.Block.hasDynamic() {
			// cdktf types a few deeply nested blocks (wafv2 statements)
			// as "any"; Terraform allows no dynamic values in a set.
			nb.Nesting = "list"
		}
		b.Blocks = append(b.Blocks, nb)
	}
	for _, g := range out.getters {
		if configured[g[0]] || strings.HasSuffix(g[0], "Input") || g[0] == "internalValue" {
			continue
		}
		name, t, err := x.getterType(f, out, g[1], 0)
		if err != nil {
			x.problem("%s: %s.%s: %v", f.dir, out.name, g[0], err)
			continue
		}
		b.Attributes = append(b.Attributes, Attr{Name: name, Type: t, Computed: true})
	}
	return b
}

func js(v any) Type {
	b, _ := json.Marshal(v)
	return b
}

// storageType is the type of a configurable attribute: storage is cdktf's
// storage class (string, numberList, stringMapList, ...), kind is "simple",
// "list", "set" or "map" and says whether the outermost list is a set.
func storageType(storage, kind string) (Type, error) {
	var prim string
	for _, p := range []string{"string", "number", "boolean", "any"} {
		if strings.HasPrefix(storage, p) {
			prim = p
			break
		}
	}
	rest := storage[len(prim):]
	var t any
	switch prim {
	case "string", "number":
		t = prim
	case "boolean":
		t = "bool"
	case "any":
		t = "dynamic"
	default:
		return nil, fmt.Errorf("unknown storage class %q", storage)
	}
	var wraps []string
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "List"):
			wraps = append(wraps, "list")
			rest = rest[4:]
		case strings.HasPrefix(rest, "Map"):
			wraps = append(wraps, "map")
			rest = rest[3:]
		default:
			return nil, fmt.Errorf("unknown storage class %q", storage)
		}
	}
	for i, w := range wraps {
		if i == len(wraps)-1 && w == "list" && kind == "set" {
			w = "set"
		}
		t = []any{w, t}
	}
	return js(t), nil
}

var getterTypes = map[string]string{
	"getStringAttribute":        `"string"`,
	"getNumberAttribute":        `"number"`,
	"getBooleanAttribute":       `"bool"`,
	"getStringMapAttribute":     `["map","string"]`,
	"getNumberMapAttribute":     `["map","number"]`,
	"getBooleanMapAttribute":    `["map","bool"]`,
	"getListAttribute":          `["list","string"]`,
	"getNumberListAttribute":    `["list","number"]`,
	"interpolationForAttribute": `"dynamic"`,
}

var primitiveMaps = map[string]string{
	"cdktf.StringMap":  `["map","string"]`,
	"cdktf.NumberMap":  `["map","number"]`,
	"cdktf.BooleanMap": `["map","bool"]`,
}

// getterType reads a getter's return expression and gives the attribute's
// name and type.
func (x *extractor) getterType(f *jsFile, c *jsClass, ret string, depth int) (string, Type, error) {
	if depth > 12 {
		return "", nil, fmt.Errorf("nesting too deep")
	}
	if m := reAttrCall.FindStringSubmatch(ret); m != nil {
		t, ok := getterTypes[m[1]]
		if !ok {
			return "", nil, fmt.Errorf("unknown accessor %s", m[1])
		}
		if strings.Contains(ret, "Fn.tolist(") && strings.HasPrefix(t, `["list"`) {
			t = `["set"` + t[len(`["list"`):]
		}
		return m[2], Type(t), nil
	}
	field, ok := strings.CutPrefix(ret, "this._")
	if !ok {
		return "", nil, fmt.Errorf("unknown getter form %q", ret)
	}
	n, ok := c.news[field]
	if !ok {
		return "", nil, fmt.Errorf("no constructor assignment for %s", field)
	}
	if t, ok := primitiveMaps[n.class]; ok {
		return n.name, Type(t), nil
	}
	k := f.classes[n.class]
	if k == nil {
		return "", nil, fmt.Errorf("unknown class %s", n.class)
	}
	switch k.base {
	case "cdktf.ComplexObject":
		t, err := x.objectType(f, k, depth+1)
		return n.name, t, err
	case "cdktf.ComplexList", "cdktf.ComplexMap":
		ek := f.classes[k.listElem]
		if ek == nil {
			return "", nil, fmt.Errorf("no element class for %s", k.name)
		}
		et, err := x.objectType(f, ek, depth+1)
		if err != nil {
			return "", nil, err
		}
		coll := "list"
		if k.base == "cdktf.ComplexMap" {
			coll = "map"
		} else if n.set {
			coll = "set"
		}
		return n.name, js([]any{coll, et}), nil
	}
	return "", nil, fmt.Errorf("unknown base %s of %s", k.base, k.name)
}

func (x *extractor) objectType(f *jsFile, c *jsClass, depth int) (Type, error) {
	fields := map[string]Type{}
	for _, g := range c.getters {
		if strings.HasSuffix(g[0], "Input") || g[0] == "internalValue" {
			continue
		}
		name, t, err := x.getterType(f, c, g[1], depth)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", c.name, g[0], err)
		}
		fields[name] = t
	}
	return js([]any{"object", fields}), nil
}

func (b Block) hasDynamic() bool {
	for _, a := range b.Attributes {
		if strings.Contains(string(a.Type), `"dynamic"`) {
			return true
		}
	}
	for _, nb := range b.Blocks {
		if nb.Block.hasDynamic() {
			return true
		}
	}
	return false
}
