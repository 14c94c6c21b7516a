package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/gateway/app"
	"github.com/shelterwatch/shelterwatch/gateway/console"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// TestDemoReadingsFlow is what `make run` promises: the demo starts, the
// simulated sensors' readings flow through real MQTT into the store, and
// /metrics counts them for every firmware format.
func TestDemoReadingsFlow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	type ready struct {
		a     *app.App
		token string
	}
	readyCh := make(chan ready, 1)
	done := make(chan error, 1)
	// The banner is written before OnReady, which hands over through the
	// channel: reading it after that is ordered.
	var banner bytes.Buffer
	// Created before the cleanup below is registered, so the demo stops
	// before its directory is removed (cleanups run last-in first-out).
	dataDir := t.TempDir()
	go func() {
		done <- Run(ctx, Options{
			DataDir: dataDir, HTTPListen: "127.0.0.1:0", MQTTListen: "127.0.0.1:0", WebRTCUDP: "127.0.0.1:0",
			Interval: 100 * time.Millisecond, EventEvery: time.Hour,
			Logger: slog.New(slog.DiscardHandler), Out: &banner, BcryptCost: bcrypt.MinCost,
			OnReady: func(a *app.App, token string) { readyCh <- ready{a, token} },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	var r ready
	select {
	case r = <-readyCh:
	case err := <-done:
		t.Fatalf("demo stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("demo not ready within 30s")
	}

	// The banner names the console, and the gateway serves it there (or,
	// in a binary built without it, says how to build it).
	consoleURL := "http://" + r.a.HTTPAddr() + "/"
	if !strings.Contains(banner.String(), consoleURL) {
		t.Errorf("the banner does not name the console at %s:\n%s", consoleURL, banner.String())
	}
	page, err := http.Get(consoleURL)
	if err != nil {
		t.Fatal(err)
	}
	pageBody, _ := io.ReadAll(page.Body)
	page.Body.Close()
	switch {
	case console.Built() && (page.StatusCode != 200 || !strings.Contains(string(pageBody), `<div id="app">`)):
		t.Errorf("console at %s: %d %.200s", consoleURL, page.StatusCode, pageBody)
	case !console.Built() && page.StatusCode != http.StatusServiceUnavailable:
		t.Errorf("console not built: %s answered %d, want 503 with how to build it", consoleURL, page.StatusCode)
	}

	// The banner gives one console login per role, each with its own
	// generated password, and they log in with that role.
	logins := regexp.MustCompile(`(?m)^\s+(admin|manager|supervisor|inspector)\s+(demo\.\S+)\s+(\S{16})$`).FindAllStringSubmatch(banner.String(), -1)
	if len(logins) != 4 {
		t.Fatalf("want 4 console logins in the banner:\n%s", banner.String())
	}
	for _, l := range logins {
		body, _ := json.Marshal(map[string]string{"name": l[2], "password": l[3]})
		resp, err := http.Post("http://"+r.a.HTTPAddr()+"/api/v1/session", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var who struct{ Role string }
		_ = json.NewDecoder(resp.Body).Decode(&who)
		resp.Body.Close()
		if resp.StatusCode != 200 || who.Role != l[1] {
			t.Fatalf("login %s: %d as %q, want 200 as %s", l[2], resp.StatusCode, who.Role, l[1])
		}
	}

	formatCount := regexp.MustCompile(`shelterwatch_ingest_messages_total\{format="([a-z0-9]+)"\} (\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.a.HTTPAddr()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen := map[string]bool{}
		for _, m := range formatCount.FindAllStringSubmatch(string(body), -1) {
			if n, _ := strconv.Atoi(m[2]); n > 0 {
				seen[m[1]] = true
			}
		}
		if len(seen) == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s only these formats were counted in /metrics: %v", seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.a.Store.LastSeq() == 0 {
		t.Fatal("metrics count messages but the store holds no reading")
	}

	req, _ := http.NewRequest("GET", "http://"+r.a.HTTPAddr()+"/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Devices []struct {
			Device string `json:"device"`
			Online bool   `json:"online"`
		} `json:"devices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("devices API: status %d, %v", resp.StatusCode, err)
	}
	online := 0
	for _, d := range got.Devices {
		if d.Online {
			online++
		}
	}
	if online == 0 || len(got.Devices) < 10 {
		t.Fatalf("devices API: %d devices, %d online", len(got.Devices), online)
	}

	// The two simulated cameras are pulled and watchable over WHEP.
	waitCameras := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "http://"+r.a.HTTPAddr()+"/api/v1/cameras", nil)
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var cams []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
		err = json.NewDecoder(resp.Body).Decode(&cams)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, c := range cams {
			if c.State == "live" {
				live++
			}
		}
		if len(cams) == 2 && live == 2 {
			break
		}
		if time.Now().After(waitCameras) {
			t.Fatalf("demo cameras not live: %+v", cams)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	v, err := whepclient.Dial(wctx, whepclient.Options{URL: "http://" + r.a.HTTPAddr() + "/api/v1/cameras/entrance-cam/whep",
		Token: r.token, Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, err := v.Keyframe(wctx); err != nil {
		t.Fatal(err)
	}
}
