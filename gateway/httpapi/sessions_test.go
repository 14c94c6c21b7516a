package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// The live viewing sessions a manager sees are those of the cameras the
// manager's token may watch; viewers may not list them at all.
func TestVideoSessionsOnlyOfPermittedCameras(t *testing.T) {
	start := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	sessions := []whep.Record{
		{ID: "s1", Camera: "ward-cam", Who: "supervisor-li", Remote: "10.0.0.7:50000", Start: start},
		{ID: "s2", Camera: "door-cam", Who: "supervisor-wang", Remote: "10.0.0.9:50001", Start: start},
	}
	var tokens []httpapi.Token
	for _, tc := range []struct {
		name, role, secret string
		cameras            []string
	}{
		{"ward-manager", "manager", "ward-manager-secret-1", []string{"ward-cam"}},
		{"all-admin", "admin", "all-admin-secret-2", []string{"*"}},
		{"ward-viewer", "viewer", "ward-viewer-secret-3", []string{"ward-cam"}},
	} {
		tok, err := httpapi.ParseToken(tc.name, tc.role, sha256Hex(tc.secret))
		if err != nil {
			t.Fatal(err)
		}
		tok.Cameras = tc.cameras
		tokens = append(tokens, tok)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: tokens, Gatherer: prometheus.NewRegistry(),
		Video: &httpapi.Video{Sessions: func() []whep.Record { return sessions }}}))
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		secret string
		code   int
		want   []string
	}{
		{"ward-manager-secret-1", http.StatusOK, []string{"s1"}},
		{"all-admin-secret-2", http.StatusOK, []string{"s1", "s2"}},
		{"ward-viewer-secret-3", http.StatusForbidden, nil},
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/video/sessions", nil)
		req.Header.Set("Authorization", "Bearer "+tc.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got []whep.Record
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Fatalf("%s: %d, want %d", tc.secret, resp.StatusCode, tc.code)
		}
		var ids []string
		for _, s := range got {
			ids = append(ids, s.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Fatalf("%s sees sessions %v, want %v", tc.secret, ids, tc.want)
		}
	}
}
