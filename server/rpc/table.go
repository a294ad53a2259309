package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Handler serves one method. S is the session type the table is built
// for (the session package's *Session, say), so handlers get their
// session without a context lookup or a type assertion. args has one
// entry per Method.Params name, in order: the raw JSON the client passed
// (possibly null), or nil when an optional parameter was left out.
//
// The result is encoded with encoding/json (a json.RawMessage goes out as
// it is). To send a particular error code, return an *Error, possibly
// wrapped; any other error goes to the client as ErrInternal.
type Handler[S any] func(ctx context.Context, s S, args []json.RawMessage) (any, error)

// Method describes one Electrum method at a range of protocol versions.
// A method whose signature changed between versions (server.ping in 1.7)
// has one Method per range.
type Method[S any] struct {
	// Name is the method name, e.g. "blockchain.block.header".
	Name string
	// Params are the parameter names, in positional order, as the spec
	// names them (they are also the keys for named arguments).
	Params []string
	// Required is how many of the leading Params must be given.
	Required int
	// MinVersion is the first protocol version with the method; zero
	// means every version.
	MinVersion Version
	// RemovedIn is the first protocol version without the method; zero
	// means it was never removed. It is exclusive, not an inclusive
	// maximum, because versions like "1.6.0" sort after "1.6": a method
	// "≤1.6" in the spec has RemovedIn 1.7 and so stays available when
	// 1.6.0 is negotiated.
	RemovedIn Version
	// IgnoreExtra makes Bind drop surplus positional arguments and
	// unknown named ones instead of failing; server.version needs it
	// (spec §3.2 rule 8).
	IgnoreExtra bool
	// Handler serves the method.
	Handler Handler[S]
}

// availableAt reports whether the method exists at protocol version v.
func (m *Method[S]) availableAt(v Version) bool {
	return (m.MinVersion.IsZero() || v.Compare(m.MinVersion) >= 0) &&
		(m.RemovedIn.IsZero() || v.Compare(m.RemovedIn) < 0)
}

// Bind matches the params of a request with the method's parameters and
// returns one raw argument per name in Params, nil for an optional one
// that was not given. params is a JSON array (positional) or object
// (named); nil or empty means no arguments.
//
// Failures are -32602 errors worded as ElectrumX words them (spec §2.2):
//
//	1 argument passed to method "M" but it requires 2
//	3 arguments passed to method M taking at most 2
//	method "M" requires parameter "a"
//	method "M" requires parameters "a", "b"
//	method "M" does not take parameter "x"
//	method "M" does not take parameters "x", "y"
//
// (names sorted; the second form really has no quotes). With
// IgnoreExtra, surplus positional and unknown named arguments are
// dropped instead.
func (m *Method[S]) Bind(params json.RawMessage) ([]json.RawMessage, *Error) {
	params = trimSpace(params)
	if len(params) == 0 {
		params = emptyParams
	}
	args := make([]json.RawMessage, len(m.Params))
	switch params[0] {
	case '[':
		n := 0
		end, err := scanArray(params, 0, 0, func(i int) (int, error) {
			end, err := scanValue(params, i, 1)
			if err == nil && n < len(args) {
				args[n] = params[i:end]
			}
			n++
			return end, err
		})
		if err != nil || end != len(params) {
			break
		}
		if n < m.Required {
			return nil, ErrInvalidParams(fmt.Sprintf(`%d argument%s passed to method "%s" but it requires %d`,
				n, plural(n), m.Name, m.Required))
		}
		if n > len(m.Params) && !m.IgnoreExtra {
			return nil, ErrInvalidParams(fmt.Sprintf(`%d argument%s passed to method %s taking at most %d`,
				n, plural(n), m.Name, len(m.Params)))
		}
		return args, nil
	case '{':
		var unknown []string
		end, err := scanObject(params, 0, 0, func(key, value []byte) {
			name := unescape(key)
			if i := slices.Index(m.Params, name); i >= 0 {
				args[i] = value
			} else if !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		})
		if err != nil || end != len(params) {
			break
		}
		var missing []string
		for i := range m.Required {
			if args[i] == nil {
				missing = append(missing, m.Params[i])
			}
		}
		if len(missing) > 0 {
			return nil, ErrInvalidParams(fmt.Sprintf(`method "%s" requires %s`, m.Name, paramList(missing)))
		}
		if len(unknown) > 0 && !m.IgnoreExtra {
			return nil, ErrInvalidParams(fmt.Sprintf(`method "%s" does not take %s`, m.Name, paramList(unknown)))
		}
		return args, nil
	}
	return nil, ErrInvalidParams(msgBadArgs + excerpt(params))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// paramList formats names as `parameter "a"` or `parameters "a", "b"`,
// sorted.
func paramList(names []string) string {
	names = slices.Clone(names)
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("parameter")
	if len(names) > 1 {
		b.WriteByte('s')
	}
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(` "`)
		b.WriteString(n)
		b.WriteByte('"')
	}
	return b.String()
}

// Table is the set of methods a session serves, looked up by name and
// negotiated protocol version. It is immutable and safe for concurrent
// use.
type Table[S any] struct {
	byName map[string][]*Method[S]
}

// NewTable builds a table from methods, which it copies. It fails when a
// method has no name or handler, Required is out of range, a parameter
// name is empty or repeated, RemovedIn is not above MinVersion, or two
// methods with the same name overlap in version.
func NewTable[S any](methods ...Method[S]) (*Table[S], error) {
	t := &Table[S]{byName: make(map[string][]*Method[S], len(methods))}
	var errs []error
	for _, m := range methods {
		m.Params = slices.Clone(m.Params)
		if err := m.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, other := range t.byName[m.Name] {
			if overlap(&m, other) {
				errs = append(errs, fmt.Errorf("rpc: method %q: version ranges %s and %s overlap",
					m.Name, versionRange(&m), versionRange(other)))
			}
		}
		t.byName[m.Name] = append(t.byName[m.Name], &m)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (m *Method[S]) check() error {
	switch {
	case m.Name == "":
		return errors.New("rpc: method without a name")
	case m.Handler == nil:
		return fmt.Errorf("rpc: method %q: no handler", m.Name)
	case m.Required < 0 || m.Required > len(m.Params):
		return fmt.Errorf("rpc: method %q: %d required of %d parameters", m.Name, m.Required, len(m.Params))
	case !m.MinVersion.IsZero() && !m.RemovedIn.IsZero() && m.RemovedIn.Compare(m.MinVersion) <= 0:
		return fmt.Errorf("rpc: method %q: empty version range %s", m.Name, versionRange(m))
	}
	for i, p := range m.Params {
		if p == "" || slices.Contains(m.Params[:i], p) {
			return fmt.Errorf("rpc: method %q: parameter name %q empty or repeated", m.Name, p)
		}
	}
	return nil
}

// overlap reports whether two methods' version ranges intersect; zero
// bounds are infinite.
func overlap[S any](a, b *Method[S]) bool {
	below := func(lo, hi Version) bool { // lo < hi, with lo = -inf, hi = +inf when zero
		return lo.IsZero() || hi.IsZero() || lo.Compare(hi) < 0
	}
	return below(a.MinVersion, b.RemovedIn) && below(b.MinVersion, a.RemovedIn)
}

func versionRange[S any](m *Method[S]) string {
	lo, hi := "", ""
	if !m.MinVersion.IsZero() {
		lo = m.MinVersion.String()
	}
	if !m.RemovedIn.IsZero() {
		hi = m.RemovedIn.String()
	}
	return "[" + lo + ", " + hi + ")"
}

// Lookup returns the method called name at protocol version v, or
// ErrMethodNotFound when there is none: unknown names and methods not
// available at v look the same to the client.
func (t *Table[S]) Lookup(name string, v Version) (*Method[S], *Error) {
	for _, m := range t.byName[name] {
		if m.availableAt(v) {
			return m, nil
		}
	}
	return nil, ErrMethodNotFound(name)
}

// Call looks up r's method at version v, binds its params and runs the
// handler with s. Lookup and binding failures come back as *Error; the
// handler's result and error come back as it returned them, ready for
// Codec.Reply or Batch.Add.
func (t *Table[S]) Call(ctx context.Context, s S, v Version, r *Request) (any, error) {
	m, rpcErr := t.Lookup(r.Method, v)
	if rpcErr != nil {
		return nil, rpcErr
	}
	args, rpcErr := m.Bind(r.Params)
	if rpcErr != nil {
		return nil, rpcErr
	}
	return m.Handler(ctx, s, args)
}
