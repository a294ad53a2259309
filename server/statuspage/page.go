package statuspage

import (
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"

	"amber/internal/chain"
)

//go:embed static
var static embed.FS

// Source reports a node's status; *server.Server is one.
type Source interface {
	Status(ctx context.Context) Status
}

// Page is the status page's handler.
type Page struct {
	src   Source
	net   *chain.Network
	files http.Handler
}

// New returns the status page of src, a node on net.
func New(src Source, net *chain.Network) *Page {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // invariant: the directory is embedded
	}
	return &Page{src: src, net: net, files: http.FileServerFS(sub)}
}

// Register adds the page's routes to mux (a *telemetry.HTTPServer or an
// *http.ServeMux): / with its assets, /status.json and /scripthash.
func (p *Page) Register(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle("GET /{$}", http.HandlerFunc(p.index))
	mux.Handle("GET /static/", http.StripPrefix("/static", p.files))
	mux.Handle("GET /status.json", http.HandlerFunc(p.status))
	mux.Handle("GET /scripthash", http.HandlerFunc(p.scripthash))
}

func (p *Page) index(w http.ResponseWriter, r *http.Request) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// statusDoc is /status.json: the node's status and its network.
type statusDoc struct {
	Network string `json:"network"`
	Status
}

func (p *Page) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, statusDoc{Network: p.net.Name, Status: p.src.Status(r.Context())})
}

// scripthash answers {"scripthash": hex, "script": hex} for ?address=
// or ?script= (hex), or {"error": ...} with status 400.
func (p *Page) scripthash(w http.ResponseWriter, r *http.Request) {
	var script []byte
	var err error
	switch q := r.URL.Query(); {
	case q.Get("address") != "":
		script, err = chain.AddressToScript(p.net, strings.TrimSpace(q.Get("address")))
	case q.Get("script") != "":
		script, err = hex.DecodeString(strings.TrimSpace(q.Get("script")))
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want ?address= or ?script="})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"scripthash": chain.ScriptHashOf(script).Hex(),
		"script":     hex.EncodeToString(script),
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
