package pprofenv

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Off unless its variable is set; when set, the profiles are served on the
// address it names.
func TestStart(t *testing.T) {
	v := PluginVar("proxy_reverse")
	if v != "CAPUCHIN_PPROF_PROXY_REVERSE" {
		t.Fatalf("variable %q", v)
	}
	t.Setenv(v, "")
	if addr := Start(v, hclog.NewNullLogger()); addr != "" {
		t.Fatalf("serving on %s without the variable", addr)
	}
	t.Setenv(v, "127.0.0.1:0")
	addr := Start(v, hclog.NewNullLogger())
	if addr == "" {
		t.Fatal("not serving")
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
}
