package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A response written after the server's write timeout is lost, unless the
// route opted out with longLived.
func TestLongLivedOutlastsTheWriteTimeout(t *testing.T) {
	const writeTimeout = 50 * time.Millisecond
	late := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(4 * writeTimeout) // past the deadline, whatever the scheduler does
		_, _ = io.WriteString(w, "answer")
	})
	mux := http.NewServeMux()
	mux.Handle("/plain", late)
	mux.Handle("/long", longLived(late))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.WriteTimeout = writeTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

	if resp, err := client.Get(srv.URL + "/plain"); err == nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && string(b) == "answer" {
			t.Fatal("an answer written after the write timeout arrived: the timeout is not in force")
		}
	}
	resp, err := client.Get(srv.URL + "/long")
	if err != nil {
		t.Fatalf("long-lived route cut off by the write timeout: %v", err)
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "answer" {
		t.Fatalf("long-lived route: %q, %v", b, err)
	}
}
