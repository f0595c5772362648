package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"time"

	"github.com/opportunist/opportunist/internal/palette"
)

//go:embed assets
var assets embed.FS

// DefaultStreamInterval is how often the stream sends a state.
const DefaultStreamInterval = time.Second

// Option tunes the handler.
type Option func(*handler)

// WithStreamInterval sets how often GET /api/v1/stream sends a state.
func WithStreamInterval(d time.Duration) Option {
	return func(h *handler) { h.interval = d }
}

// WithPrefix mounts the handler under a path prefix (e.g. "/dashboard"), so
// it can share a mux; the page's links are relative and follow.
func WithPrefix(prefix string) Option {
	return func(h *handler) { h.prefix = prefix }
}

// WithContext ends every stream when ctx ends, so that a server's graceful
// shutdown need not wait for open pages to go away.
func WithContext(ctx context.Context) Option {
	return func(h *handler) { h.done = ctx.Done() }
}

type handler struct {
	src      Source
	done     <-chan struct{}
	interval time.Duration
	prefix   string
	mux      *http.ServeMux
}

// NewHandler serves the page at "/" and the JSON API under /api/v1/.
func NewHandler(src Source, opts ...Option) http.Handler {
	h := &handler{src: src, interval: DefaultStreamInterval}
	for _, o := range opts {
		o(h)
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(fmt.Sprintf("dashboard: embedded assets: %v", err)) // cannot happen: the folder is embedded
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /api/v1/state", h.state)
	h.mux.HandleFunc("GET /api/v1/history", h.history)
	h.mux.HandleFunc("GET /api/v1/stream", h.stream)
	h.mux.HandleFunc("GET /palette.css", servePalette)
	h.mux.HandleFunc("GET /{file}", serveAsset(static))
	h.mux.HandleFunc("GET /{$}", serveAsset(static))
	if h.prefix == "" {
		return h.mux
	}
	return http.StripPrefix(h.prefix, h.mux)
}

// serveAsset serves one embedded file with its content type; "/" is index.html.
func serveAsset(static fs.FS) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		if name == "" {
			name = "index.html"
		}
		data, err := fs.ReadFile(static, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType(name))
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(data)
	}
}

// servePalette serves the colours the simulate plots use too, as CSS
// variables: one palette, defined in internal/palette.
func servePalette(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", contentType("palette.css"))
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = io.WriteString(w, palette.CSS())
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func (h *handler) state(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.src.State())
}

func (h *handler) history(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.src.History())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		slog.Debug("dashboard: writing JSON", "err", err)
	}
}

// stream sends the state as Server-Sent Events ("event: state"), at once and
// then every interval, until the client goes away.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		data, err := json.Marshal(h.src.State())
		if err != nil {
			slog.Debug("dashboard: encoding state", "err", err)
			return
		}
		if _, err := fmt.Fprintf(w, "event: state\ndata: %s\n\n", data); err != nil {
			return
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-h.done:
			return
		case <-tick.C:
		}
	}
}
