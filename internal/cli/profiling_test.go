//go:build !nocluster

package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestProfilingFlag checks that /debug/pprof/ is served on the listen
// address's mux only with --profiling.
func TestProfilingFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{name: "off by default", want: http.StatusNotFound},
		{name: "on with --profiling", args: []string{"--profiling"}, want: http.StatusOK},
		{name: "off with --profiling=false", args: []string{"--profiling=false"}, want: http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultRunOptions()
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			o.addProfiling(mux)
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline"} {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != tc.want {
					t.Errorf("GET %s: status %d, want %d", path, rec.Code, tc.want)
				}
				if tc.want == http.StatusOK && path == "/debug/pprof/heap?debug=1" && !strings.Contains(rec.Body.String(), "heap profile") {
					t.Errorf("GET %s: not a heap profile: %.200s", path, rec.Body.String())
				}
			}
		})
	}
}
