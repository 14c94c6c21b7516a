package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/gateway/httpapi"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// The facility as the console needs it before it shows anything: names,
// the time zone its dates are in, the zones, the version; for any caller
// that is logged in, and nobody else.
func TestFacility(t *testing.T) {
	var tokens []httpapi.Token
	for _, role := range []string{"metrics", "supervisor"} {
		tok, err := httpapi.ParseToken(role, role, sha256Hex(role+"-secret"))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	srv := httptest.NewServer(httpapi.Handler(httpapi.Options{Tokens: tokens, Gatherer: prometheus.NewRegistry(), Version: "1.4.0",
		Facility: httpapi.Facility{ID: "harbin-3", Name: "Harbin Relief Station 3", NameZH: "哈尔滨第三救助站", Timezone: "Asia/Shanghai",
			Zones: []facility.Zone{
				{ID: "dorm3", Name: "Dormitory 3", NameZH: "三号宿舍", Tags: []string{"dormitory"}},
				{ID: "kitchen"},
			},
			Devices: []facility.Device{{ID: "kitchen-smoke", Zone: "kitchen"}}}}))
	t.Cleanup(srv.Close)

	const want = `{"id":"harbin-3","name":"Harbin Relief Station 3","name_zh":"哈尔滨第三救助站","timezone":"Asia/Shanghai",` +
		`"zones":[{"id":"dorm3","name":"Dormitory 3","name_zh":"三号宿舍","tags":["dormitory"]},` +
		`{"id":"kitchen","name":"","name_zh":"","tags":[]}],"version":"1.4.0"}` + "\n"
	for _, tc := range []struct {
		name, auth string
		code       int
		body       string
	}{
		{"a metrics token", "Bearer metrics-secret", http.StatusOK, want},
		{"a supervisor", "Bearer supervisor-secret", http.StatusOK, want},
		{"no credentials", "", http.StatusUnauthorized, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/facility", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || (tc.body != "" && string(body) != tc.body) {
				t.Fatalf("%d %s\nwant %d %s", resp.StatusCode, body, tc.code, tc.body)
			}
		})
	}
}
